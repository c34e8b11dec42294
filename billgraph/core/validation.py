"""Input checks shared by the services. Each raises ValidationError naming the field."""

import re

from billgraph.core.errors import ValidationError
from billgraph.currencies import CURRENCIES

# The largest amount a JSON client can hold exactly (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_AMOUNT = 2**53 - 1

# Deliberately simple: one "@", no spaces, a dot in the domain. Deliverability is the
# caller's business; this catches typos and junk.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x1f]")


def amount(value: int, field: str = "amount") -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("Amount must be an integer in minor units.", field)
    if value <= 0:
        raise ValidationError("Amount must be greater than zero.", field)
    if value > MAX_AMOUNT:
        raise ValidationError(f"Amount must be at most {MAX_AMOUNT}.", field)
    return value


def threshold(value: int | None, field: str) -> int | None:
    """A balance threshold in minor units: 0 up to the largest balance; None for none."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("A threshold must be an integer in minor units.", field)
    if not 0 <= value <= MAX_AMOUNT:
        raise ValidationError(f"A threshold must be between 0 and {MAX_AMOUNT}.", field)
    return value


def currency(value: str, field: str = "currency") -> str:
    code = value.upper()
    if code not in CURRENCIES:
        raise ValidationError(f"Unknown currency {value!r}.", field)
    return code


def storable(value: str, field: str) -> str:
    """Text both databases can store: Unicode scalar values only (no lone surrogate, which
    neither UTF-8 nor SQLite can encode) and no NUL, which PostgreSQL refuses."""
    if "\x00" in value:
        raise ValidationError(f"{field} must not contain NUL characters.", field)
    if _SURROGATE.search(value):
        raise ValidationError(f"{field} must be valid Unicode text (no lone surrogates).", field)
    return value


def text(value: str | None, field: str, *, max_length: int, required: bool = False) -> str | None:
    """Trimmed text, None when empty (unless required); refuses control characters and text
    no database can store."""
    if value is None:
        if required:
            raise ValidationError(f"{field} is required.", field)
        return None
    value = value.strip()
    if not value:
        if required:
            raise ValidationError(f"{field} must not be empty.", field)
        return None
    if len(value) > max_length:
        raise ValidationError(f"{field} must be at most {max_length} characters.", field)
    if _CONTROL.search(value):
        raise ValidationError(f"{field} must not contain control characters.", field)
    return storable(value, field)


def email(value: str, field: str = "email") -> str:
    checked = text(value, field, max_length=254, required=True)
    assert checked is not None
    if not _EMAIL.match(checked):
        raise ValidationError("Email address is not valid.", field)
    return checked

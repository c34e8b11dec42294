"""The currency table: ISO 4217 code, minor-unit exponent and symbol.

Amounts everywhere in billgraph are integers in the currency's minor unit (cents for USD,
paise for INR, whole won for KRW). Adding a currency is one line here; the GraphQL enum and
the database checks are derived from this table.
"""

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class Currency:
    code: str
    exponent: int
    symbol: str
    name: str


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        Currency("USD", 2, "$", "US Dollar"),
        Currency("EUR", 2, "€", "Euro"),
        Currency("GBP", 2, "£", "Pound Sterling"),
        Currency("INR", 2, "₹", "Indian Rupee"),
        Currency("KRW", 0, "₩", "South Korean Won"),
        Currency("JPY", 0, "¥", "Japanese Yen"),
        Currency("CAD", 2, "$", "Canadian Dollar"),
        Currency("AUD", 2, "$", "Australian Dollar"),
        Currency("SGD", 2, "$", "Singapore Dollar"),
        Currency("CHF", 2, "CHF", "Swiss Franc"),
        Currency("BRL", 2, "R$", "Brazilian Real"),
        Currency("MXN", 2, "$", "Mexican Peso"),
        Currency("KWD", 3, "KD", "Kuwaiti Dinar"),
    )
}


# The codes as an enum: the GraphQL Currency enum is this one.
CurrencyCode = Enum("CurrencyCode", {code: code for code in CURRENCIES}, type=str)  # type: ignore[misc]


def format_amount(amount: int, currency: str) -> str:
    """Minor units as people read them: 1,234.50 USD, -2.50 USD, 15,000 KRW."""
    exponent = CURRENCIES[currency].exponent
    sign = "-" if amount < 0 else ""
    if exponent == 0:
        return f"{sign}{abs(amount):,} {currency}"
    whole, minor = divmod(abs(amount), 10**exponent)
    return f"{sign}{whole:,}.{minor:0{exponent}d} {currency}"

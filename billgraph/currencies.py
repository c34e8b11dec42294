"""The currency table: ISO 4217 code, minor-unit exponent and symbol.

Amounts everywhere in billgraph are integers in the currency's minor unit (cents for USD,
paise for INR, whole won for KRW). Adding a currency is one line here; the GraphQL enum and
the database checks are derived from this table.
"""

from dataclasses import dataclass


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


def get_currency(code: str) -> Currency:
    """The currency for an ISO 4217 code; raises KeyError for a code not in the table."""
    return CURRENCIES[code.upper()]


def format_amount(amount: int, code: str) -> str:
    """Human-readable amount, e.g. 1050 USD -> '$10.50', 5000 KRW -> '₩5000'."""
    currency = get_currency(code)
    sign = "-" if amount < 0 else ""
    units, minor = divmod(abs(amount), 10**currency.exponent)
    if currency.exponent == 0:
        return f"{sign}{currency.symbol}{units}"
    return f"{sign}{currency.symbol}{units}.{minor:0{currency.exponent}d}"

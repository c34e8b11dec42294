"""Money on the hosted pages, as people read it."""

import pytest

from billgraph.currencies import format_amount


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (123456, "USD", "1,234.56 USD"),
        (5, "USD", "0.05 USD"),
        (0, "USD", "0.00 USD"),
        (-150, "USD", "-1.50 USD"),
        (-5, "USD", "-0.05 USD"),
        (15000, "KRW", "15,000 KRW"),
        (-15000, "KRW", "-15,000 KRW"),
    ],
)
def test_amounts_in_minor_units_are_shown_with_their_sign(
    amount: int, currency: str, shown: str
) -> None:
    assert format_amount(amount, currency) == shown

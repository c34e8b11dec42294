from billgraph.billing.periods import add_months, boundary, next_boundary
from tests.billing.helpers import at


def test_a_monthly_plan_anchored_on_jan_31_of_a_leap_year_keeps_its_day_for_14_months() -> None:
    anchor = at(2028, 1, 31, 9, 30)
    ends = [boundary(anchor, "MONTH", 1, n) for n in range(1, 15)]
    assert [(e.year, e.month, e.day) for e in ends] == [
        (2028, 2, 29),
        (2028, 3, 31),
        (2028, 4, 30),
        (2028, 5, 31),
        (2028, 6, 30),
        (2028, 7, 31),
        (2028, 8, 31),
        (2028, 9, 30),
        (2028, 10, 31),
        (2028, 11, 30),
        (2028, 12, 31),
        (2029, 1, 31),
        (2029, 2, 28),
        (2029, 3, 31),
    ]
    assert all((e.hour, e.minute) == (9, 30) for e in ends)
    walked, end = [], anchor
    for _ in range(14):
        end = next_boundary(anchor, "MONTH", 1, end)
        walked.append(end)
    assert walked == ends


def test_yearly_on_feb_29_and_interval_counts() -> None:
    anchor = at(2028, 2, 29)
    assert [boundary(anchor, "YEAR", 1, n).date().isoformat() for n in range(1, 5)] == [
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]
    assert next_boundary(anchor, "MONTH", 3, anchor) == at(2028, 5, 29)
    assert next_boundary(anchor, "MONTH", 3, at(2028, 5, 29)) == at(2028, 8, 29)
    assert add_months(at(2028, 12, 31), 2) == at(2029, 2, 28)

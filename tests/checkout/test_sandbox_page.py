"""The sandbox's hosted checkout page over HTTP: what it shows (amount and currency, the card
field, escaped text), its self-only policy, and what each test card does (pays and redirects
with the wallet credited; declines and leaves the session OPEN with the error; asks for
3-D Secure first)."""

import re

import httpx
import pytest

from billgraph.db.engine import Database
from tests.conftest import assert_ledger_invariant
from tests.support.checkout import EXPIRE_SESSION, create_session, session_of
from tests.support.graph import Tenant, snapshot


def _path(session: dict[str, object]) -> str:
    return f"/sandbox/checkout/{session['providerSessionId']}"


async def _pay(
    client: httpx.AsyncClient, session: dict[str, object], **form: str
) -> httpx.Response:
    return await client.post(_path(session), data=form)


async def test_the_page_shows_the_amount_and_a_labelled_card_field_under_a_self_only_policy(
    tenant: Tenant, client: httpx.AsyncClient
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(
        tenant,
        customer,
        123456,
        cancelUrl='https://shop.example/cart?q="><script>alert(1)</script>',
    )
    page = await client.get(_path(session))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "style-src 'self'" in policy
    assert "script-src" not in policy and "unsafe" not in policy
    assert "form-action 'self' https://shop.example" in policy
    assert page.headers["x-frame-options"] == "DENY"
    assert "1,234.56 USD" in page.text
    assert '<label for="card_number">Card number</label>' in page.text
    field = re.search(r"<input[^>]*id=\"card_number\"[^>]*>", page.text)
    assert field and 'name="card_number"' in field[0] and 'autocomplete="cc-number"' in field[0]
    assert re.search(r'<form method="post">.*<button type="submit">Pay</button>', page.text)
    assert "<script" not in page.text and "&lt;script&gt;" in page.text
    assert "https://" not in page.text.replace("https://shop.example/cart", "")
    css = await client.get("/static/sandbox/checkout.css")
    assert css.status_code == 200
    zero_decimal = await create_session(tenant, customer, 5000, currency="KRW")
    assert "5,000 KRW" in (await client.get(_path(zero_decimal))).text


async def test_the_success_card_pays_credits_and_redirects_to_the_success_url(
    tenant: Tenant, client: httpx.AsyncClient, database: Database
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 2000)
    paid = await _pay(client, session, card_number="4242 4242 4242 4242")
    assert paid.status_code == 303
    assert paid.headers["location"] == (
        f"https://shop.example/paid?session={session['providerSessionId']}"
    )
    assert await snapshot(tenant, customer) == [("USD", 2000, 1, 1)]
    done = await session_of(tenant, session["id"])
    assert done["status"] == "COMPLETE" and done["ledgerEntry"]["amount"] == 2000
    again = await _pay(client, session, card_number="4242424242424242")
    assert again.status_code == 409 and "This checkout session is paid." in again.text
    assert await snapshot(tenant, customer) == [("USD", 2000, 1, 1)]
    await assert_ledger_invariant(database)


@pytest.mark.parametrize(
    ("card", "code", "text"),
    [
        ("4000 0000 0000 9995", "insufficient_funds", "Your card has insufficient funds."),
        ("4000-0000-0000-0069", "expired_card", "Your card has expired."),
        ("4000000000000002", "card_declined", "Your card was declined."),
        ("4300 0000 0000 0004", "card_declined", "The card is suspended."),
        ("5555 5555 5555 4444", "card_declined", "not a sandbox test card"),
    ],
)
async def test_a_declined_card_leaves_the_session_open_with_its_error(
    tenant: Tenant, client: httpx.AsyncClient, card: str, code: str, text: str
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 900)
    declined = await _pay(client, session, card_number=card)
    assert declined.status_code == 402 and text in declined.text
    assert 'role="alert"' in declined.text and 'name="card_number"' in declined.text
    after = await session_of(tenant, session["id"])
    assert after["status"] == "OPEN" and after["lastPaymentError"]["code"] == code
    assert await snapshot(tenant, customer) == [("USD", 0, 0, 0)]
    # Another card pays it.
    assert (await _pay(client, session, card_number="4300000000000001")).status_code == 303
    assert await snapshot(tenant, customer) == [("USD", 900, 1, 1)]


async def test_3d_secure_asks_first_then_pays_or_fails(
    tenant: Tenant, client: httpx.AsyncClient
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 650)
    step = await _pay(client, session, card_number="4000 0025 0000 3155")
    assert step.status_code == 200
    assert "Complete authentication" in step.text and "Fail authentication" in step.text
    assert await snapshot(tenant, customer) == [("USD", 0, 0, 0)]
    failed = await _pay(client, session, card_number="4000002500003155", authentication="fail")
    assert failed.status_code == 402 and "authentication failed" in failed.text
    after = await session_of(tenant, session["id"])
    assert after["status"] == "OPEN"
    assert after["lastPaymentError"]["code"] == "authentication_required"
    paid = await _pay(client, session, card_number="4000002500003155", authentication="complete")
    assert paid.status_code == 303
    assert await snapshot(tenant, customer) == [("USD", 650, 1, 1)]


async def test_malformed_numbers_unknown_pages_and_expired_sessions_pay_nothing(
    tenant: Tenant, client: httpx.AsyncClient
) -> None:
    customer = (await tenant.create_customer())["customer"]["id"]
    session = await create_session(tenant, customer, 300)
    for card in ("", "4242", "abcd efgh ijkl mnop", "4" * 40):
        bad = await _pay(client, session, card_number=card)
        assert bad.status_code == 400 and "Enter a card number" in bad.text, card
    garbage = await client.post(_path(session), content=b"\xff\xfe" * 10)
    assert garbage.status_code == 400
    assert (await session_of(tenant, session["id"]))["lastPaymentError"] is None
    missing = await client.get("/sandbox/checkout/cs_sandbox_nope")
    assert missing.status_code == 404 and "No checkout session" in missing.text
    await tenant.data(EXPIRE_SESSION, {"id": session["id"]})
    page = await client.get(_path(session))
    assert "expired: it can no longer be paid" in page.text and "card_number" not in page.text
    late = await _pay(client, session, card_number="4242424242424242")
    assert late.status_code == 409
    assert await snapshot(tenant, customer) == [("USD", 0, 0, 0)]

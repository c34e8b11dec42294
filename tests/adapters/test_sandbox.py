"""The sandbox adapter's verification on its own: the signature is over the raw bytes, the
tolerance is 300 s either way, and what it parses is provider-neutral."""

import asyncio
import json

import pytest

from billgraph.adapters.base import EventKind, InvalidWebhook, Provider, WebhookEvent
from billgraph.adapters.sandbox import SandboxProvider, completed_event, sign

SECRET = "whsec_unit"
NOW = 1_800_000_000


def _parse(body: bytes, header: str, now: float = NOW) -> WebhookEvent:
    adapter = SandboxProvider("http://127.0.0.1:8000", SECRET)
    headers = {"billgraph-signature": header}
    return asyncio.run(adapter.parse_webhook(body, json.loads(body), headers, now))


def _event() -> bytes:
    return completed_event(
        "cs_sandbox_x",
        amount=1999,
        currency="USD",
        client_reference_id="1",
        metadata={},
        created=NOW,
    )


@pytest.mark.parametrize("age", [-300, 0, 300])
def test_within_300_seconds_either_way_the_event_is_taken(age: int) -> None:
    body = _event()
    event = _parse(body, sign(SECRET, body, NOW - age))
    assert event.provider is Provider.SANDBOX
    assert event.kind is EventKind.PAID
    assert (event.amount, event.currency) == (1999, "USD")


@pytest.mark.parametrize("age", [-301, 301, NOW])
def test_outside_300_seconds_the_signature_is_stale(age: int) -> None:
    body = _event()
    with pytest.raises(InvalidWebhook) as refused:
        _parse(body, sign(SECRET, body, NOW - age))
    assert refused.value.code == "STALE_SIGNATURE"


def test_the_signature_covers_the_raw_bytes() -> None:
    body = _event()
    reserialized = json.dumps(json.loads(body), indent=1).encode()  # same JSON, other bytes
    with pytest.raises(InvalidWebhook) as refused:
        _parse(reserialized, sign(SECRET, body, NOW))
    assert refused.value.code == "INVALID_SIGNATURE"
    # One of several v1 values matching is enough (as when a secret is being rolled).
    header = f"t={NOW},v1={'0' * 64},v1={sign(SECRET, body, NOW).split('v1=')[1]}"
    assert _parse(body, header).kind is EventKind.PAID

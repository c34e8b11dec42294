"""The write both benchmarks load the gateway with: createLedgerEntry, a DEBIT of 1 USD cent
with a fresh idempotency key, which must succeed without a replay."""

import json
from typing import Any

DEBIT = """
mutation Debit($input: CreateLedgerEntryInput!) {
  createLedgerEntry(input: $input) {
    __typename
    ... on CreateLedgerEntrySuccess {
      replayed entry { id sequence balanceAfter } wallet { balance version }
    }
    ... on UserError { code message }
  }
}
"""


class WriteFailed(Exception):
    """Anything but a fresh successful debit."""


def debit_body(customer_global_id: str, key: str) -> bytes:
    return json.dumps(
        {
            "query": DEBIT,
            "operationName": "Debit",
            "variables": {
                "input": {
                    "customerId": customer_global_id,
                    "amount": 1,
                    "currency": "USD",
                    "entryType": "DEBIT",
                    "idempotencyKey": key,
                }
            },
        }
    ).encode()


def debit_result(status: int, text: str) -> dict[str, Any]:
    """The createLedgerEntry success of a response, else WriteFailed saying what went wrong."""
    if status != 200:
        raise WriteFailed(f"HTTP {status}: {text[:300]}")
    try:
        body = json.loads(text)
    except ValueError:
        raise WriteFailed(f"not JSON: {text[:300]}") from None
    if body.get("errors"):
        raise WriteFailed(f"GraphQL errors: {str(body['errors'])[:300]}")
    result: dict[str, Any] = (body.get("data") or {}).get("createLedgerEntry") or {}
    if result.get("__typename") != "CreateLedgerEntrySuccess":
        raise WriteFailed(f"{result.get('__typename')}: {str(result)[:300]}")
    if result.get("replayed"):
        raise WriteFailed(f"unexpected replay: {str(result)[:300]}")
    return result

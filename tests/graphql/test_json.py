"""Answers are compact JSON with text as UTF-8 (not \\u escapes), read back as sent."""

import json

from billgraph.graphql.view import encode_json
from tests.support.graph import Tenant


async def test_text_comes_back_as_utf8_and_as_it_was_written(tenant: Tenant) -> None:
    created = await tenant.create_customer()
    wallet = created["wallet"]["id"]
    reason = 'Zoë\'s café — 東京 "quoted" \\ back\\slash 🙂'
    posted = await tenant.post(created["customer"]["id"], 5, reason=reason)
    assert posted["__typename"] == "CreateLedgerEntrySuccess", posted
    response = await tenant.client.post(
        "/graphql",
        json={
            "query": "query($id: ID!) { wallet(id: $id) { ledgerEntries(first: 1) "
            "{ edges { node { reason } } } } }",
            "variables": {"id": wallet},
        },
        headers={"authorization": f"Bearer {tenant.api_key}"},
    )
    assert "Zoë's café — 東京".encode() in response.content
    assert b'{"data":{"wallet":' in response.content  # compact: no spaces after separators
    edges = response.json()["data"]["wallet"]["ledgerEntries"]["edges"]
    assert edges == [{"node": {"reason": reason}}]


def test_what_orjson_refuses_is_written_by_json() -> None:
    data = {"n": 2**70, "text": "é", "list": [1, None, True]}
    assert json.loads(encode_json(data)) == data
    assert encode_json(data) == '{"n":1180591620717411303424,"text":"é","list":[1,null,true]}'
    assert encode_json({"n": 2**62, "text": "é"}) == '{"n":4611686018427387904,"text":"é"}'

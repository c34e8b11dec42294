"""Which media type a GraphQL response over HTTP is sent in, from the request's `Accept`.

GraphQL over HTTP has two: `application/json`, where every answer to a well-formed request is
a 200, and `application/graphql-response+json`, where a request error (the document does not
parse or validate, the variables do not coerce, the operation is refused before it runs)
is a 4xx or 5xx without `data`. The client's preferences decide, RFC 9110 style: each type
takes the q of the most specific range that matches it; the higher q wins, then the more
specific match, then the range listed first; a wildcard alone (`*/*`, `application/*`), no
`Accept` or one that accepts neither type gets `application/json`, as legacy clients expect.
"""

from typing import Final

JSON: Final = "application/json"
GRAPHQL_RESPONSE_JSON: Final = "application/graphql-response+json"

# On a full tie (both matched by one wildcard) the first wins: application/json.
_OFFERED: Final = (JSON, GRAPHQL_RESPONSE_JSON)


def response_media_type(accept: str | None) -> str:
    """The media type to answer in: GRAPHQL_RESPONSE_JSON or JSON."""
    ranges = _parse(accept or "")
    best, best_rank = JSON, (0.0, -1, 0)
    for offered in _OFFERED:
        rank = _rank(offered, ranges)
        if rank is not None and rank[0] > 0 and rank > best_rank:
            best, best_rank = offered, rank
    return best


def _parse(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, q) of each media range, lower-cased; malformed ranges are dropped."""
    ranges = []
    for item in accept.split(","):
        media_range, *parameters = item.split(";")
        kind, slash, subtype = media_range.strip().lower().partition("/")
        if not slash or not kind or not subtype:
            continue
        q = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
                break  # what follows q are accept-extensions, not media type parameters
        ranges.append((kind, subtype, q))
    return ranges


def _rank(offered: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int, int] | None:
    """(q, specificity, -position) of the most specific range matching `offered`, if any."""
    kind, _, subtype = offered.partition("/")
    found: tuple[int, int, float] | None = None  # (specificity, position, q)
    for position, (range_kind, range_subtype, q) in enumerate(ranges):
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = 2
        elif range_kind == kind and range_subtype == "*":
            specificity = 1
        elif (range_kind, range_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if found is None or specificity > found[0]:
            found = (specificity, position, q)
    if found is None:
        return None
    specificity, position, q = found
    return (q, specificity, -position)

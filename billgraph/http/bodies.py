"""JSON from requests, decoded in one place with bounds, for every route: request bodies, the
JSON inside query parameters, messages on sockets.

Whatever a client sends, decoding either returns a value or raises BadBody (a 400 for the
caller): UTF-8 only, at most MAX_DEPTH arrays and objects nested, integers of at most
MAX_INTEGER_DIGITS digits, no NaN or Infinity. Without the bounds Python's decoder fails in
ways that are not decoding errors (RecursionError, the int-string conversion limit), which
would be answered as a server failure.
"""

import itertools
import json
import math
import re

MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 100


class BadBody(json.JSONDecodeError):
    """The JSON cannot be read; `msg` says why. A JSONDecodeError, so code that handles
    undecodable JSON (Strawberry's socket protocols among it) handles these as well."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "", 0)

    def __str__(self) -> str:
        return self.msg


# A JSON string, escapes included; what is inside cannot open or close anything.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = [0] * 256
_STEP[ord("[")] = _STEP[ord("{")] = 1
_STEP[ord("]")] = _STEP[ord("}")] = -1


def nesting(data: bytes) -> int:
    """How deep arrays and objects nest in the JSON text `data`, without parsing it (and
    without recursion: a text nested a million deep is measured like any other)."""
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_charset(content_type: str | None) -> None:
    """A JSON body is UTF-8 (RFC 8259): a Content-Type declaring another charset is refused."""
    for parameter in (content_type or "").split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            if charset not in ("utf-8", "utf8"):
                raise BadBody(f"The request body must be UTF-8 (charset={charset[:40]!r} sent).")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise BadBody(f"A JSON number has more than {MAX_INTEGER_DIGITS} digits.")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadBody("A JSON number is too large.")
    return value


def _constant(name: str) -> object:
    raise BadBody(f"{name} is not JSON.")


def parse_json(data: bytes | str) -> object:
    """The value of the JSON text `data` (bytes must be UTF-8); BadBody if it is not one,
    or exceeds the bounds."""
    if isinstance(data, str):
        raw = data.encode("utf-8", "surrogatepass")
        text = data
    else:
        raw = data
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadBody(f"The request body is not valid UTF-8 (byte {exc.start}).") from None
    # No deeper than its opening brackets are many: counting them spares most bodies the scan.
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH and (depth := nesting(raw)) > MAX_DEPTH:
        raise BadBody(f"JSON nested {depth} deep; at most {MAX_DEPTH} is accepted.")
    try:
        return json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except BadBody:
        raise
    except json.JSONDecodeError as exc:
        raise BadBody(
            f"The request body is not valid JSON ({exc.msg}: line {exc.lineno} column {exc.colno})."
        ) from None
    except (RecursionError, ValueError) as exc:  # the bounds above keep these from happening
        raise BadBody(f"The request body cannot be decoded ({type(exc).__name__}).") from None

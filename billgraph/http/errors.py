"""The HTTP layer's own error answers, on every route: `{"errors": [{"message", "extensions":
{"code", "requestId"}}]}`, the shape GraphQL errors have.

Bodies are ASCII JSON: a message that quotes what a client sent (an operation name with a
lone surrogate, say) always encodes.
"""

import json

from starlette.responses import Response

# A database outage: the client should come back, not report a bug.
UNAVAILABLE_CODE = "SERVICE_UNAVAILABLE"
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable: its database does not answer."
RETRY_AFTER_SECONDS = 1


def error_body(message: str, code: str, request_id: str | None) -> bytes:
    error = {"message": message, "extensions": {"code": code, "requestId": request_id}}
    return json.dumps({"errors": [error]}).encode()


def error_response(
    status: int,
    message: str,
    code: str,
    request_id: str | None,
    headers: dict[str, str] | None = None,
) -> Response:
    return Response(
        error_body(message, code, request_id),
        status_code=status,
        headers=headers,
        media_type="application/json",
    )


def unavailable_headers() -> dict[str, str]:
    return {"retry-after": str(RETRY_AFTER_SECONDS)}

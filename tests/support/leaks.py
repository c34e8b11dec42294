"""What no response body may say: the server's internals (a stack trace, a driver or its
error, SQL) or a masked failure where bad input deserved a coded answer."""

# Text that would mean a stack trace, a driver error or SQL reached the client.
LEAK_MARKERS_EXACT = ("Traceback", "SELECT ", "INSERT ", 'File "')
LEAK_MARKERS_ANY_CASE = ("sqlalchemy", "asyncpg", "sqlite", "psycopg")


def assert_no_leak(text: str) -> None:
    """The response body says nothing about the server's internals, and no input reached
    the mask of unexpected errors."""
    for marker in LEAK_MARKERS_EXACT:
        assert marker not in text, f"response leaks {marker!r}: {text[:2000]}"
    lowered = text.lower()
    for marker in LEAK_MARKERS_ANY_CASE:
        assert marker not in lowered, f"response leaks {marker!r}: {text[:2000]}"
    assert "INTERNAL_SERVER_ERROR" not in text, f"bad input reached the error mask: {text[:2000]}"

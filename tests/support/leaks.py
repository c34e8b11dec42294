"""What no response body may say: the server's internals (a stack trace, a driver or its
error, SQL) or a masked failure where bad input deserved a coded answer."""

# Text that would mean a stack trace, a driver error or SQL reached the client.
LEAK_MARKERS_EXACT = ("Traceback", "SELECT ", "INSERT ", 'File "')
LEAK_MARKERS_ANY_CASE = ("sqlalchemy", "asyncpg", "sqlite", "psycopg")


def assert_no_leak(text: str, sent: str = "") -> None:
    """The response body says nothing about the server's internals, and no input reached
    the mask of unexpected errors. A marker the request itself carried (`sent`) is an echo
    of the client's own text (a validation message quoting its literal), not a leak."""
    for marker in LEAK_MARKERS_EXACT:
        if marker not in sent:
            assert marker not in text, f"response leaks {marker!r}: {text[:2000]}"
    lowered, sent_lowered = text.lower(), sent.lower()
    for marker in LEAK_MARKERS_ANY_CASE:
        if marker not in sent_lowered:
            assert marker not in lowered, f"response leaks {marker!r}: {text[:2000]}"
    assert "INTERNAL_SERVER_ERROR" not in text, f"bad input reached the error mask: {text[:2000]}"

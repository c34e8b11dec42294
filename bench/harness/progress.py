"""Progress lines on stderr, stamped with the seconds since the benchmark started; stdout
carries only the results."""

import sys
import time

_started = time.monotonic()


def progress(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:6.1f}s] {message}", file=sys.stderr, flush=True)

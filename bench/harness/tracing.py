"""An OTLP/HTTP sink on loopback, so a benchmark can measure the gateway with tracing on: it
accepts the exporter's POSTs, counts them and discards their spans."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OtlpSink(ThreadingHTTPServer):
    exports = 0


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        assert isinstance(self.server, OtlpSink)
        self.server.exports += 1
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per export would drown the benchmark's progress."""


@contextmanager
def otlp_sink() -> Iterator[OtlpSink]:
    """A running sink; its `server_port` is where to point the exporter."""
    sink = OtlpSink(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.shutdown()
        sink.server_close()


def tracing_env(sink: OtlpSink | None) -> dict[str, str]:
    """The gateway's environment for tracing on (exporting to `sink`) or off; off overrides an
    OTLP endpoint inherited from the shell."""
    if sink is None:
        return {"OTEL_SDK_DISABLED": "true"}
    return {"BILLGRAPH_OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}"}

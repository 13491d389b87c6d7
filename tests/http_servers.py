"""HTTP servers the tests run in their own process: the app on the local runtime's threaded server, a JWKS."""
from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve `app` on a free port as `make run` does (threads, one per request); yields its base URL."""
    from chalicelib.local.server import make_server

    server = make_server(app, "127.0.0.1", 0)
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.shutdown()
        server.server.server_close()
        thread.join(10)


def jwks_server(keys: list[dict]) -> ThreadingHTTPServer:
    """A JWKS endpoint (any path) answering `{"keys": keys}`, as Cognito's; call `.shutdown()` when done."""
    body = json.dumps({"keys": keys}).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

"""A webhook receiver on loopback (a real ``ThreadingHTTPServer``) that records each request,
checks its signature, and answers as the test says: for the completion webhook tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from talent_assets.core.webhooks import verify_signature


@dataclass
class Receiver:
    """A webhook receiver on loopback; ``answer(request_number, headers, body)`` picks the
    status (None: never answer)."""

    answer: Callable[[int, dict[str, str], bytes], int | None]
    secret: str | None = None
    requests: list[tuple[dict[str, str], bytes, bool]] = field(default_factory=list)
    url: str = ""
    released: threading.Event = field(default_factory=threading.Event)

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body, _ in self.requests]


@contextmanager
def serve_receiver(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = dict(self.headers.items())
            verified = bool(receiver.secret) and verify_signature(
                receiver.secret or "", headers.get("Talent-Signature", ""), body
            )
            receiver.requests.append((headers, body, verified))
            status = receiver.answer(len(receiver.requests), headers, body)
            if status is None:  # accept, then say nothing until the test ends
                receiver.released.wait(30)
                return
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/secret-path"
    try:
        yield receiver
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()

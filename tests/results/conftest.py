"""The dispatch stack (simulator, SQLite, Redis, a real Celery worker) plus a push receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.results.inbox import record_raw


class PushReceiver:
    """A loopback receiver storing each pushed body with ``record_raw`` before answering, as the web
    app's ``/push/{account}/...`` does. The simulator posts to ``/push/{vendor}``: mapped to accounts."""

    def __init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode("utf-8")
                if receiver.sessions is None:  # not bound yet: the simulator pushes again later
                    self.send_response(503)
                    self.end_headers()
                    return
                vendor = self.path.rstrip("/").rsplit("/", 1)[-1]
                kind = (
                    "replies"
                    if ("GetMo=" in body or '"type": 3' in body or '"type": 4' in body)
                    else "reports"
                )
                with receiver.sessions() as session:
                    record_raw(session, receiver.accounts[vendor], kind, "push", body)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.sessions: sessionmaker[Session] | None = None
        self.accounts: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push/{{vendor}}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bind(self, sessions: sessionmaker[Session], accounts: dict[str, str]) -> None:
        self.accounts = accounts
        self.sessions = sessions

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[PushReceiver]:
    made = PushReceiver()
    yield made
    made.close()

"""Slow and greedy clients against ``dispatcher web`` itself (a real process, raw sockets on loopback):
headers that never end, bodies that pause, uploads by strangers, too many connections from one address;
and what its access log keeps of a secret in a URL."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.web.conftest import PUSH_TOKEN
from tests.web.process import WebProcess, web_process

SETTINGS = "header_timeout_s = 2\nbody_timeout_s = 2\nmax_connections_per_client = 8"
PROXY = "192.0.2.1"  # a proxy elsewhere: this test's loopback connections are clients


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    # One process for the module: starting one takes seconds, and each test leaves it as it found it.
    with web_process(tmp_path_factory.mktemp("web"), SETTINGS, forwarded_allow_ips=PROXY) as running:
        yield running


def _connect(web: WebProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", web.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed ``sock`` (what it sent first is ignored); fails after ``seconds``."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {seconds} s")
    return time.monotonic() - started


def test_given_headers_that_never_end_then_the_server_closes_the_connection(web: WebProcess) -> None:
    sock = _connect(web)
    sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    assert _closed_within(sock, 8) >= 1
    # And on a kept-alive connection, the next request's headers have the same time
    sock = _connect(web)
    sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    _closed_within(sock, 8)
    assert httpx.get(f"{web.base_url}/login", timeout=5).status_code == 200


def test_given_a_body_that_pauses_then_the_request_ends_without_waiting_for_the_rest(web: WebProcess) -> None:
    sock = _connect(web)
    head = (
        "POST /api/campaigns/preview HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {web.tokens['sender']}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n"
    )
    sock.sendall(head.encode() + b"--xyz\r\n" + b"x" * 1000)
    assert _closed_within(sock, 10) >= 1


def test_given_no_credentials_when_uploading_then_refused_before_the_body_is_sent(web: WebProcess) -> None:
    for path, expected in (
        ("/uploads", b"HTTP/1.1 303"),
        ("/api/campaigns", b"HTTP/1.1 401"),
        ("/api/campaigns/preview", b"HTTP/1.1 401"),
    ):
        sock = _connect(web)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 49000000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"--xyz\r\n")
        sock.settimeout(1.5)  # well before the body timeout: the answer comes without the body
        assert sock.recv(65536).startswith(expected), path
        sock.close()
    # A viewer may not upload either: told so before sending anything
    sock = _connect(web)
    head = (
        "POST /api/campaigns HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {web.tokens['viewer']}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 49000000\r\n\r\n"
    )
    sock.sendall(head.encode())
    sock.settimeout(1.5)
    assert sock.recv(65536).startswith(b"HTTP/1.1 403")


def test_given_one_client_opening_many_connections_then_those_past_the_cap_are_refused(
    web: WebProcess,
) -> None:
    held = [_connect(web) for _ in range(8)]
    for sock in held:
        sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")  # kept alive, each one counts
    extra = _connect(web)
    extra.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert _closed_within(extra, 5) < 2
    for sock in held:
        sock.close()
    time.sleep(0.5)
    assert httpx.get(f"{web.base_url}/login", timeout=5).status_code == 200


def test_given_a_push_token_in_the_url_however_spelled_then_the_access_log_masks_it(web: WebProcess) -> None:
    for spelling in ("token", "t%6Fken", "TOKEN", "%74oken", "to%6ben", "%2574oken"):
        url = f"{web.base_url}/push/{web.accounts['yunxin']}/reports?{spelling}={PUSH_TOKEN}&x=1"
        r = httpx.post(url, data={"account": "x"}, timeout=10)
        assert r.status_code in (200, 400, 403), r.text
        time.sleep(0.3)
        log = web.log.read_text(errors="replace")
        assert f"/reports?{spelling}=***&x=1" in log, spelling
        assert PUSH_TOKEN not in log, spelling

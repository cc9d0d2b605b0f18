"""A bounded load test on loopback: while one sender attacks ``dispatcher web`` every way at once (a
template that renders gigabytes, a CSV of millions of empty columns, slow previews, connections that
never finish their headers, uploads that never finish their bodies), another user's sign-in, campaign
page and preview keep answering within 2 s, and the web process stays under 1 GB.

The other user connects from 127.0.0.2, as another client would from its own address (the server caps
connections per address).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from tests.web.conftest import PASSWORD, csrf_of
from tests.web.process import WebProcess, web_process

SETTINGS = "header_timeout_s = 3\nbody_timeout_s = 3\nmax_connections_per_client = 32\npreview_timeout_s = 20"
PROXY = "192.0.2.1"
ATTACK_S = 15.0
ANSWER_S = 2.0
TEMPLATE = "{姓名}您好，回T退订【测试】"
CSV = "text/csv"


def _files(tmp: Path) -> dict[str, bytes]:
    long_rows = "".join(f"139{i:08d},客户{i}\n" for i in range(150_000))
    return {
        "amplify.csv": (
            "手机号,姓名\n" + "".join(f"139{i:08d},{'长' * 1000}\n" for i in range(100))
        ).encode(),
        "commas.csv": ("手机号,姓名" + "," * 10_000_000 + "\n13900000001,张三\n").encode(),
        "long.csv": ("手机号,姓名\n" + long_rows).encode(),
        "small.csv": "手机号,姓名\n13900000001,张三\n13900000002,李四\n".encode(),
    }


def _attacks(web: WebProcess, files: dict[str, bytes], stop: threading.Event) -> list[Callable[[], None]]:
    bearer = {"Authorization": f"Bearer {web.tokens['sender']}"}
    account = web.accounts["yunxin"]

    def api(path: str, name: str, template: str) -> None:
        with httpx.Client(base_url=web.base_url, headers=bearer, timeout=60) as c:
            while not stop.is_set():
                c.post(path, data={"template": template, "account": account},
                       files={"file": (name, files[name], CSV)})  # fmt: skip

    def amplify() -> None:  # finding 1: created straight away, no preview
        api("/api/campaigns", "amplify.csv", "{姓名}" * 40_000 + "回T退订【测试】")

    def amplify_within_template_limits() -> None:
        api("/api/campaigns", "amplify.csv", "{姓名}" * 50 + "回T退订【测试】")

    def commas() -> None:  # finding 2: the compose page of ten million columns
        with httpx.Client(base_url=web.base_url, timeout=60) as c:
            _sign_in(c, "sender")
            token = csrf_of(c.get("/campaigns/new").text)
            r = c.post(
                "/uploads", data={"csrf": token}, files={"file": ("commas.csv", files["commas.csv"], CSV)}
            )
            page = r.headers.get("location", "/campaigns")
            while not stop.is_set():
                c.get(page)

    def slow_previews() -> None:  # finding 3: long previews, two at a time
        api("/api/campaigns/preview", "long.csv", TEMPLATE)

    def slow_headers() -> None:  # finding 4: connections that never finish their headers
        open_: list[socket.socket] = []
        while not stop.is_set():
            open_ = [s for s in open_ if s.fileno() != -1]
            with contextlib.suppress(OSError):
                s = socket.create_connection(("127.0.0.1", web.port), timeout=2)
                s.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")
                open_.append(s)
            if len(open_) > 200:
                for s in open_[:100]:
                    s.close()
                open_ = open_[100:]
            time.sleep(0.01)
        for s in open_:
            s.close()

    def stalled_uploads() -> None:  # finding 4: bodies that never end, with and without credentials
        while not stop.is_set():
            with contextlib.suppress(OSError):
                s = socket.create_connection(("127.0.0.1", web.port), timeout=2)
                s.sendall(
                    b"POST /api/campaigns/preview HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {web.tokens['sender']}\r\n".encode()
                    + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 49000000\r\n\r\n--b\r\n"
                )
                time.sleep(0.5)
                s.close()

    return [amplify, amplify_within_template_limits, commas, slow_previews, slow_previews, slow_headers,
            stalled_uploads]  # fmt: skip


def _sign_in(c: httpx.Client, name: str) -> None:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": name, "password": PASSWORD, "csrf": token})
    assert r.status_code == 303, r.text


@contextlib.contextmanager
def _timed(times: list[tuple[str, float]], what: str) -> Iterator[None]:
    started = time.monotonic()
    yield
    times.append((what, time.monotonic() - started))


def _campaign(web: WebProcess, files: dict[str, bytes]) -> int:
    r = httpx.post(
        f"{web.base_url}/api/campaigns",
        data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
        files={"file": ("small.csv", files["small.csv"], CSV)},
        headers={"Authorization": f"Bearer {web.tokens['admin']}"},
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def test_given_a_sender_attacking_every_way_at_once_then_another_user_is_served_within_2_s(
    tmp_path: Path,
) -> None:
    files = _files(tmp_path)
    with web_process(tmp_path, SETTINGS, forwarded_allow_ips=PROXY) as web:
        campaign = _campaign(web, files)
        stop = threading.Event()
        attacks = _attacks(web, files, stop)
        pool = concurrent.futures.ThreadPoolExecutor(len(attacks))
        running = [pool.submit(attack) for attack in attacks]
        times: list[tuple[str, float]] = []
        peak = 0.0
        try:
            time.sleep(3)  # the attack under way
            other = httpx.HTTPTransport(local_address="127.0.0.2")
            deadline = time.monotonic() + ATTACK_S
            while time.monotonic() < deadline:
                with httpx.Client(base_url=web.base_url, transport=other, timeout=30) as c:
                    with _timed(times, "sign-in"):
                        _sign_in(c, "sender2")
                    with _timed(times, "campaign page"):
                        assert c.get(f"/campaigns/{campaign}").status_code == 200
                    with _timed(times, "preview"):
                        r = c.post(
                            "/api/campaigns/preview",
                            data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
                            files={"file": ("small.csv", files["small.csv"], CSV)},
                            headers={"x-csrf-token": csrf_of(c.get("/campaigns/new").text)},
                        )
                        assert r.status_code == 200, r.text
                        assert r.json()["messages"] == 2
                peak = max(peak, web.rss_mb())
                time.sleep(0.5)
        finally:
            stop.set()
            for future in running:
                with contextlib.suppress(Exception):
                    future.result(timeout=60)
            pool.shutdown()
        peak = max(peak, web.peak_mb())
        slow = [(what, round(took, 2)) for what, took in times if took > ANSWER_S]
        assert len(times) >= 9 and slow == [], slow
        assert peak < 1024, f"the web process reached {peak:.0f} MB"
        log = web.log.read_text(errors="replace")
        assert not re.search(r"Traceback|Too many open files", log), log[-3000:]

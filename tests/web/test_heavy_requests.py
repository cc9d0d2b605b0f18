"""Requests that read an upload or write an export take long; a sender firing dozens of them must not
freeze the app for everyone else (the server's shared thread pool serves every page, sign-in included),
nor make the web process read many uploads at once.

A reading that takes long is played by stopping (SIGSTOP) the sandbox's children reading a list, which
then hold their turns without using CPU, as children reading a big or crafted file do; SIGCONT ends it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.results import campaign_export
from dispatcher.web.auth import add_user
from tests.helpers import basic, draft, sandbox_children
from tests.web.conftest import PASSWORD, Web, csrf_of, write_contacts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATE = "{姓名}您好，回T退订【测试】"
FLOOD = 60  # more requests than the server's shared pool has threads (40)


def upload(c: httpx.Client, path: Path) -> str:
    token = csrf_of(c.get("/campaigns/new").text)
    r = c.post("/uploads", data={"csrf": token}, files={"file": (path.name, path.read_bytes(), XLSX)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])


@contextlib.contextmanager
def stuck_readings(
    web: Web, readers: list[httpx.Client], tmp_path: Path
) -> Iterator[list[concurrent.futures.Future[httpx.Response]]]:
    """A preview of a long list by each of ``readers`` (one reading at a time per user), whose children
    are stopped as soon as they start; they go on when the block ends. Yields the previews' futures."""
    path = tmp_path / "long.csv"
    with path.open("w", encoding="utf-8") as f:
        f.write("手机号,姓名\n")
        f.writelines(f"139{i:08d},客户{i}\n" for i in range(200_000))
    assert not sandbox_children()
    futures = []
    for c in readers:
        page = upload(c, path)
        form = {"csrf": csrf_of(c.get(page).text), "template": TEMPLATE, "account": web.accounts["yunxin"]}
        futures += flood(web, c, f"{page}/preview", 1, data=form)
    count = len(readers)
    stopped: set[int] = set()

    def stop_new() -> bool:
        for pid in sandbox_children():
            if pid not in stopped:
                os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
        return len(stopped) >= count

    try:
        web.wait_for(stop_new, 60)
        yield futures
    finally:
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def flood(
    web: Web, c: httpx.Client, url: str, count: int, data: dict[str, str] | None = None
) -> list[concurrent.futures.Future[httpx.Response]]:
    """``count`` GETs (POSTs of ``data``) of ``url`` with the client's cookies, all sent when this returns."""
    cookies = dict(c.cookies)
    sent = threading.Semaphore(0)

    def one() -> httpx.Response:
        hooks = {"request": [lambda _: sent.release()]}
        with httpx.Client(base_url=web.base_url, cookies=cookies, timeout=120, event_hooks=hooks) as client:
            return client.post(url, data=data) if data is not None else client.get(url)

    pool = concurrent.futures.ThreadPoolExecutor(count)
    futures = [pool.submit(one) for _ in range(count)]
    pool.shutdown(wait=False)
    for _ in range(count):
        assert sent.acquire(timeout=60)
    return futures


def answers_quickly(web: Web, url: str = "/login", **kwargs: Any) -> None:
    started = time.monotonic()
    r = httpx.get(web.base_url + url, timeout=10, **kwargs)  # a frozen server times this out
    assert r.status_code == 200 and time.monotonic() - started < 10


def second_sender(web: Web) -> httpx.Client:
    with web.sessions() as session:
        add_user(session, "sender2", PASSWORD, "sender", actor="test")
    return web.signed_in("sender2")


BUSY = ("the server is reading other files; try again", "you are already reading a file")


def test_given_readings_that_hang_when_a_sender_floods_the_upload_pages_then_other_pages_still_answer(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    normal = upload(c, write_contacts(tmp_path / "名单.xlsx", [("13900000001", "张三")]))
    with stuck_readings(web, [c, web.signed_in("admin")], tmp_path) as futures:
        futures += flood(web, c, normal, FLOOD)
        for _ in range(3):
            answers_quickly(web)
            answers_quickly(web, "/api/me", headers=basic("viewer"))
    for future in futures:  # once the readings end, the queue drains: read, or told to come back
        r = future.result()
        assert r.status_code in (200, 400, 503), r.text
        assert r.status_code != 503 or any(busy in r.text for busy in BUSY)
    assert c.get(normal).status_code == 200


def test_given_every_reading_turn_taken_when_creating_a_campaign_then_the_web_process_waits_its_turn(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # Creating reads the list in the web process itself (after a child read it whole): that reading
    # is one of the turns too, or parallel creations of a big list multiply the web process's memory.
    web = make_web()
    web.app.state.ctx.sandbox.busy_wait_s = 2
    c = web.signed_in("sender")
    page = upload(c, write_contacts(tmp_path / "名单.xlsx", [("13900000001", "张三")]))
    form = {"csrf": csrf_of(c.get(page).text), "template": TEMPLATE, "account": web.accounts["yunxin"]}
    assert c.post(f"{page}/preview", data=form).status_code == 200  # read whole by a child
    with stuck_readings(web, [web.signed_in("admin"), second_sender(web)], tmp_path) as futures:
        r = c.post(f"{page}/create", data=form)
        assert r.status_code == 503 and "the server is reading other files; try again" in r.text
    assert all(f.result().status_code == 200 for f in futures)
    r = c.post(f"{page}/create", data=form)
    assert r.status_code == 303, r.text


def test_given_exports_that_take_long_when_a_sender_starts_dozens_then_other_pages_still_answer(
    make_web: Callable[..., Web], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An export of a few million rows takes minutes: played by holding the real export until released.
    web = make_web()
    cid = draft(web)
    release = threading.Event()
    held = threading.Semaphore(0)
    real = campaign_export.export

    def slow_export(*args: Any) -> int:
        held.release()
        assert release.wait(120)
        return real(*args)

    monkeypatch.setattr(campaign_export, "export", slow_export)
    c = web.signed_in("sender")
    url = f"/campaigns/{cid}/export?format=csv"
    futures = flood(web, c, url, FLOOD)
    try:
        for _ in range(2):
            assert held.acquire(timeout=60)  # exports under way, and held
        for _ in range(3):
            answers_quickly(web)
            answers_quickly(web, "/api/me", headers=basic("viewer"))
    finally:
        release.set()
    for future in futures:
        r = future.result()
        assert r.status_code in (200, 503), r.text
        assert r.status_code != 503 or "the server is writing other exports; try again" in r.text
    assert sum(f.result().status_code == 200 for f in futures) >= 2


def test_given_a_sender_reading_a_file_when_they_fire_more_then_refused_at_once_and_others_still_read(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # Two slow previews by one sender held both turns: everyone else got 503 for minutes.
    web = make_web()
    c = web.signed_in("sender")
    admin = web.signed_in("admin")
    normal = upload(admin, write_contacts(tmp_path / "名单.xlsx", [("13900000001", "张三")]))
    with stuck_readings(web, [c], tmp_path):
        started = time.monotonic()
        second = flood(web, c, upload(c, tmp_path / "名单.xlsx"), 3)
        for future in second:
            r = future.result()
            assert r.status_code == 503 and "you are already reading a file" in r.text
        assert time.monotonic() - started < 10
        started = time.monotonic()
        assert admin.get(normal).status_code == 200  # the other turn is the admin's
        assert time.monotonic() - started < 5


def test_given_a_page_reading_that_hangs_then_it_is_stopped_at_the_page_limit_and_the_turn_comes_back(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web(settings_toml="preview_timeout_s = 2")
    c = web.signed_in("sender")
    with stuck_readings(web, [c], tmp_path) as futures:
        r = futures[0].result(timeout=30)  # stopped after 2 s, not the 300 s a campaign's reading has
        assert r.status_code == 400 and "took longer than 2 s and was stopped" in r.text
        assert not sandbox_children()  # the child is gone, and its turn with it
    page = upload(c, write_contacts(tmp_path / "名单.xlsx", [("13900000001", "张三")]))
    assert c.get(page).status_code == 200


def test_given_a_reading_child_killed_then_its_turn_is_free_at_once(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    with stuck_readings(web, [c], tmp_path) as futures:
        for pid in sandbox_children():
            os.kill(pid, signal.SIGKILL)  # the kernel's OOM killer, or an operator
        r = futures[0].result(timeout=15)
        assert r.status_code == 400 and "reading the file was stopped" in r.text
    page = upload(c, write_contacts(tmp_path / "名单.xlsx", [("13900000001", "张三")]))
    started = time.monotonic()
    assert c.get(page).status_code == 200 and time.monotonic() - started < 10

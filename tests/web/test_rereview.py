"""What an attacker's second look at the web app found still open, each over real HTTP on loopback
against ``dispatcher web`` itself (a real process: its own memory, its own HTTP server): an export that
re-read a crafted stored list in the web process, multipart bodies of a thousand parts held before any
check, answers that grew with the list, xls files the guard could not read, and bodies trickled for days.
"""

from __future__ import annotations

import contextlib
import html
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.web import auth
from tests.contacts import crafted
from tests.helpers import basic, forkservers
from tests.web.conftest import Web, csrf_of, login, still_up
from tests.web.conftest import upload as upload_page
from tests.web.process import WebProcess, web_process

TEMPLATE = "{姓名}您好，回T退订【测试】"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV = "text/csv"
SETTINGS = "body_timeout_s = 2\nbody_deadline_s = 5"
SMALL = "手机号,姓名\n13900000001,张三\n".encode()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    # One process for the module: starting one takes seconds, and each test leaves it as it found it.
    with web_process(tmp_path_factory.mktemp("web"), SETTINGS) as running:
        yield running


def _bearer(web: WebProcess, name: str = "sender") -> dict[str, str]:
    return {"Authorization": f"Bearer {web.tokens[name]}"}


def _far_cell(path: Path, row: int = 100_000) -> Path:
    """A few KB of xlsx within every limit whose one cell at AX100000 makes calamine hold 100,000 × 50
    cells (200 MB) wherever it is read."""
    rows = (
        '<row r="1"><c r="A1" t="inlineStr"><is><t>手机号</t></is></c>'
        '<c r="B1" t="inlineStr"><is><t>姓名</t></is></c></row>'
        '<row r="2"><c r="A2" t="inlineStr"><is><t>13900000001</t></is></c>'
        '<c r="B2" t="inlineStr"><is><t>张三</t></is></c></row>'
        f'<row r="{row}"><c r="AX{row}"><v>1</v></c></row>'
    )
    return crafted.workbook(path, crafted.sheet(rows))


def test_given_a_stored_list_costly_to_read_when_its_campaign_is_exported_then_the_web_process_never_reads_it(
    web: WebProcess, tmp_path: Path
) -> None:
    path = _far_cell(tmp_path / "far.xlsx")
    assert path.stat().st_size < 5000
    with httpx.Client(base_url=web.base_url, headers=_bearer(web), timeout=120) as c:
        r = c.post(
            "/api/campaigns",
            data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
            files={"file": (path.name, path.read_bytes(), XLSX)},
        )
        assert r.status_code == 201, r.text  # its reading to create it was a child's
        before = web.peak_mb()
        r = c.get(f"/api/campaigns/{r.json()['id']}/export", params={"format": "csv"})
        assert r.status_code == 200, r.text
        assert "张三" in r.text  # the list's own columns are still given back
        assert web.peak_mb() - before < 100, (
            f"the web process grew from {before:.0f} to {web.peak_mb():.0f} MB"
        )


def test_given_a_stored_list_that_fails_its_reading_when_exported_then_the_person_is_told_and_the_app_lives(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web()
    path = _far_cell(tmp_path / "far.xlsx", 10_000)
    r = web.client().post(
        "/api/campaigns",
        data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
        files={"file": (path.name, path.read_bytes(), XLSX)},
        headers=basic("sender"),
    )
    assert r.status_code == 201, r.text
    web.app.state.ctx.list_sandbox.memory_mb = 40  # this list needs more to be read again
    c = web.signed_in("sender")
    r = c.get(f"/campaigns/{r.json()['id']}/export", params={"format": "csv"})
    assert r.status_code == 400
    shown = html.unescape(r.text)
    assert '<p class="flash error" id="error">far.xlsx: ' in shown, shown[-900:]  # what went wrong, named
    still_up(web)


def _signed_in(web: WebProcess, name: str) -> httpx.Client:
    c = httpx.Client(base_url=web.base_url, timeout=30)
    login(c, name)
    return c


def _raw(web: WebProcess, head: str, body: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", web.port), timeout=10)
    sock.sendall(head.encode() + body)
    return sock


def test_given_a_multipart_body_of_many_parts_then_refused_and_never_taken_where_no_upload_goes(
    web: WebProcess,
) -> None:
    form = {"template": TEMPLATE, "account": web.accounts["yunxin"]}
    one = ("file", ("a.csv", SMALL, CSV))
    with httpx.Client(base_url=web.base_url, headers=_bearer(web), timeout=30) as c:
        for url in ("/api/campaigns/preview", "/api/campaigns"):
            r = c.post(url, data=form, files=[one, one, one])
            assert r.status_code == 400 and "Too many files. Maximum number of files is 1." in r.text, r.text
            r = c.post(url, data={**form, **{f"x{i}": "1" for i in range(100)}}, files=[one])
            assert r.status_code == 400 and "Too many fields" in r.text, r.text
        r = c.post("/api/campaigns/preview", data=form, files=[one])
        assert r.status_code == 200, r.text  # one file and its fields: as ever
        # Where no upload goes, a multipart body is refused from its headers, never parsed
        r = c.post("/api/optouts", files=[one] * 50)
        assert r.status_code == 415, r.text
    page = _signed_in(web, "sender")
    token = csrf_of(page.get("/campaigns/new").text)
    r = page.post("/uploads", data={"csrf": token}, files=[one, one])
    assert r.status_code == 400, r.text
    r = page.post("/uploads", data={"csrf": token}, files=[one])
    assert r.status_code == 303, r.text
    compose = r.headers["location"]
    r = page.post(f"{compose}/preview", data={"csrf": token, **form}, files=[one] * 50)
    assert r.status_code == 415, r.text
    assert page.post(f"{compose}/preview", data={"csrf": token, **form}).status_code == 200


def test_given_a_viewer_when_posting_to_a_reading_page_then_refused_before_the_body_is_read(
    web: WebProcess,
) -> None:
    viewer = _signed_in(web, "viewer")
    cookie = "; ".join(f"{k}={v}" for k, v in viewer.cookies.items())
    sock = _raw(
        web,
        f"POST /uploads/{'a' * 24}/preview HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9000000\r\n\r\n",
        b"csrf=",
    )
    sock.settimeout(1.5)  # well before the body timeout: the answer comes without the body
    assert sock.recv(65536).startswith(b"HTTP/1.1 403")
    sock.close()


def test_given_a_body_trickled_faster_than_the_idle_timeout_then_it_ends_at_the_body_deadline(
    web: WebProcess,
) -> None:
    sock = _raw(
        web,
        "POST /api/campaigns/preview HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {web.tokens['sender']}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: 1000000\r\n\r\n",
        b"--xyz\r\n",
    )
    started = time.monotonic()
    sock.settimeout(1.0)
    while time.monotonic() - started < 15:
        try:
            sock.sendall(b"x")  # a byte a second: never idle for the 2 s body_timeout_s
            if sock.recv(65536) == b"":  # answered (or not) and closed
                break
        except TimeoutError:
            continue
        except OSError:  # answered and closed, or reset
            break
    took = time.monotonic() - started
    assert 4 < took < 9, f"the trickled body held its connection {took:.1f} s (deadline 5 s)"


def test_given_an_api_post_with_basic_auth_then_the_password_is_checked_once(
    make_web: Callable[..., Web], monkeypatch: pytest.MonkeyPatch
) -> None:
    web = make_web()
    checked: list[str] = []
    real = auth.authenticate

    def counted(session: Any, name: str, password: str) -> Any:
        checked.append(name)
        return real(session, name, password)

    monkeypatch.setattr(auth, "authenticate", counted)
    r = web.client().post("/api/campaigns/999/pause", headers=basic("sender"))
    assert r.status_code == 404, r.text
    assert checked == ["sender"]  # one scrypt a call, not one for the gate and one for the route


def test_given_a_list_of_many_rows_of_several_numbers_when_created_then_the_answer_lists_a_bounded_few(
    web: WebProcess,
) -> None:
    rows = "".join(f"139{i:08d}/138{i:08d},客户{i}\n" for i in range(1500))
    long_value = "1" * 5000  # a phone cell no one could read: rejected, its value shown cut
    body = f"手机号,姓名\n{rows}{long_value},x\n".encode()
    with httpx.Client(base_url=web.base_url, headers=_bearer(web), timeout=60) as c:
        r = c.post(
            "/api/campaigns",
            data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
            files={"file": ("several.csv", body, CSV)},
        )
    assert r.status_code == 201, r.text
    found = r.json()
    assert found["several_numbers_total"] == 1500 and len(found["several_numbers"]) == 1000
    assert found["several_numbers"][0] == {
        "row": 2,
        "column": "手机号",
        "numbers": ["13900000000", "13800000000"],
        "sent_to": ["13900000000"],
    }
    assert found["rejected_total"] == 1 and len(found["rejected"][0]["value"]) == 200


def _edited_xls(path: Path, edit: str) -> Path:
    """The far-corner xls (a cell at column 65,536: calamine asks for 125 GB) edited so that a guard
    reading the compound file otherwise than calamine does would not find its cells."""
    data = bytearray(crafted.far_corner_xls(path).read_bytes())
    if edit == "cutoff":  # the header's mini-stream cutoff: calamine keeps 4,096 whatever it says
        data[0x38:0x3C] = (1 << 16).to_bytes(4, "little")
    elif edit == "bom":  # calamine's decoder drops a byte-order mark before the name
        at = data.find("Workbook".encode("utf-16-le"))
        data[at : at + 18] = b"\xff\xfe" + "Workbook".encode("utf-16-le")
    elif edit == "renamed":  # calamine also reads a stream named WORKBOOK
        at = data.find("Workbook".encode("utf-16-le"))
        data[at : at + 16] = "WORKBOOK".encode("utf-16-le")
    else:  # a directory past the end of the file: nothing can be checked
        data[0x30:0x34] = (10_000).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("cutoff", "spans 60,001 rows × 65,536 columns"),
        ("renamed", "spans 60,001 rows × 65,536 columns"),
        ("damaged", "its workbook cannot be checked (no directory)"),
        ("bom", "its workbook cannot be checked (a stream name starting with a byte-order mark)"),
    ],
)
def test_given_an_xls_edited_where_a_guard_could_misread_it_then_refused_before_reading_it(
    web: WebProcess, tmp_path: Path, edit: str, expected: str
) -> None:
    path = _edited_xls(tmp_path / "list.xls", edit)
    with httpx.Client(base_url=web.base_url, headers=_bearer(web), timeout=60) as c:
        r = c.post(
            "/api/campaigns/preview",
            data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
            files={"file": (path.name, path.read_bytes(), "application/vnd.ms-excel")},
        )
    assert r.status_code == 400, r.text
    detail = r.json()["detail"]
    assert detail.startswith("list.xls: ") and expected in detail and "refused before reading it" in detail, (
        detail
    )


def test_given_a_page_whose_readings_hang_then_the_page_holds_its_turn_one_preview_timeout_in_all(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    # A preview page reads three times (template A, template B, the compose page's columns): each
    # reading had the whole preview_timeout_s, so one page held its turn three times as long.
    web = make_web(settings_toml="preview_timeout_s = 4")
    c = web.signed_in("sender")
    page = upload_page(c, _far_cell(tmp_path / "名单.xlsx", 200_000))  # each reading takes a while
    form = {
        "csrf": csrf_of(c.get(page).text),
        "template": TEMPLATE,
        "template_b": "{姓名}，您好，回T退订【测试】",
        "account": web.accounts["yunxin"],
    }
    stop = threading.Event()
    stopped: set[int] = set()

    def stop_every_reading() -> None:  # each child stopped as it starts: a reading that hangs
        # The forkserver's own list of its children: scanning /proc would let a short reading finish.
        lists = [Path(f"/proc/{p}/task/{p}/children") for p in forkservers()]
        while not stop.is_set():
            fresh = {int(pid) for path in lists for pid in path.read_text().split()}
            for pid in fresh - stopped:
                os.kill(pid, signal.SIGSTOP)
                stopped.add(pid)
            time.sleep(0.005)

    stopper = threading.Thread(target=stop_every_reading)
    stopper.start()
    try:
        started = time.monotonic()
        r = c.post(f"{page}/preview", data=form)
        took = time.monotonic() - started
    finally:
        stop.set()
        stopper.join()
        for pid in stopped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
    assert r.status_code == 400 and "took longer than 4 s and was stopped" in r.text, r.text[-2000:]
    assert took < 6.5, f"the page held its turn {took:.1f} s"
    still_up(web)


@pytest.mark.parametrize(
    "framing",
    [
        [b"Content-Length: 10", b"Transfer-Encoding: chunked"],
        [
            b"Content-Type: multipart/form-data; boundary=B",
            b"Content-Type: application/x-www-form-urlencoded",
        ],
    ],
    ids=["length-and-chunked", "two-types"],
)
def test_given_a_body_whose_framing_is_ambiguous_then_it_is_refused_before_it_is_read(
    web: WebProcess, framing: list[bytes]
) -> None:
    # A length beside a chunked body passed the length check while the chunks (any size) were read; a
    # second type passed the multipart check (this reading kept the last, the app the first)
    host, port = web.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /login HTTP/1.1\r\nHost: " + host.encode() + b"\r\n" + b"\r\n".join(framing) + b"\r\n\r\n"
        )
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]

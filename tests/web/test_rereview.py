"""What an attacker's second look at the web app found still open, each over real HTTP on loopback
against ``dispatcher web`` itself (a real process: its own memory, its own HTTP server): an export that
re-read a crafted stored list in the web process, multipart bodies of a thousand parts held before any
check, answers that grew with the list, xls files the guard could not read, and bodies trickled for days.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.contacts import crafted
from tests.helpers import basic
from tests.web.conftest import Web, still_up
from tests.web.process import WebProcess, web_process

TEMPLATE = "{姓名}您好，回T退订【测试】"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    # One process for the module: starting one takes seconds, and each test leaves it as it found it.
    with web_process(tmp_path_factory.mktemp("web"), "body_timeout_s = 2") as running:
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
    web.app.state.ctx.list_sandbox.memory_mb = 150  # this list needs more to be read again
    c = web.signed_in("sender")
    r = c.get(f"/campaigns/{r.json()['id']}/export", params={"format": "csv"})
    assert r.status_code == 400
    shown = html.unescape(r.text)
    assert '<p class="flash error" id="error">far.xlsx: ' in shown, shown[-900:]  # what went wrong, named
    still_up(web)

"""The whole flow in a real browser: Debian's Chromium, headless, driven by Playwright, in Chinese and again
in English.

Sign in → upload a generated xlsx → preview (warned that the send window is closed, then with an open
window) → send a proof and see the gateway's answer → create → start → watch the sent and delivered bars
fill and the state go to 已完成 with the buttons following it → export, every number kept. With
``DISPATCHER_SCREENSHOTS=docs`` the Chinese pages are saved there as PNGs (the README's screenshots).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from tests.helpers import ARGS, CHROMIUM, Beat, playwright
from tests.web.conftest import PASSWORD, Web, write_contacts

ROWS = 40
TEMPLATE_END = "您好，会员日全场8折，回T退订【测试】"
WORDS = {
    "zh": {"warning": "不在发送时段内", "proof": "网关已接收", "completed": "已完成", "delivered_header": "手机号码",
           "states": {"已送达", "未通过"}, "reason": "第 42 行，手机号列：不是大陆手机号",
           "download": "活动%s-发送结果.xlsx", "sheet": "发送结果"},
    "en": {"warning": "Outside the send window", "proof": "accepted by the gateway", "completed": "completed",
           "delivered_header": "mobile", "states": {"delivered", "rejected"},
           "reason": "row 42, column 手机号: not a mainland China mobile number",
           "download": "campaign-%s-results.xlsx", "sheet": "results"},
}  # fmt: skip


def closed_window() -> str:
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    return f"{local.hour + 1:02d}:00-{local.hour + 2:02d}:00" if local.hour <= 21 else "00:00-01:00"


@pytest.fixture
def shots() -> Iterator[Callable[[Any, str], None]]:
    folder = os.environ.get("DISPATCHER_SCREENSHOTS")

    def shot(page: Any, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    yield shot


def run_flow(
    sync_api: Any, page: Any, web: Web, contacts: Path, lang: str, shot: Callable[[Any, str], None]
) -> int:
    """The whole flow in ``lang``; returns the campaign's id."""
    words = WORDS[lang]
    expect = sync_api.expect
    page.goto(web.base_url + "/campaigns/new")
    if lang == "en":  # a Chinese browser: the person switches to English on the sign-in page
        page.click("#lang-switch")
        expect(page.locator("h1")).to_have_text("Sign in")
    shot(page, "sign-in")
    page.fill("input[name=name]", "sender")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/campaigns/new")

    # Upload, then compose: the columns are offered as placeholders; the counter counts as it is typed.
    page.set_input_files("input[type=file]", str(contacts))
    page.click("#upload-button")
    page.wait_for_url("**/uploads/*")
    page.select_option("#account", web.accounts["yunxin"])
    page.click("button.chip[data-field='姓名']")
    page.locator("#template").press("End")
    page.locator("#template").type(TEMPLATE_END)
    assert page.input_value("#template") == "{姓名}" + TEMPLATE_END
    # ... with the first row's values (客户0), the signature included
    expect(page.locator("#counter")).to_contain_text(str(len("客户0" + TEMPLATE_END)))

    # Preview with a send window that is closed now: the preview says when it would send
    page.fill("input[name=window]", closed_window())
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert words["warning"] in page.inner_text("#window-warning")
    # ... then with the window open all day
    page.fill("input[name=window]", "00:00-24:00")
    page.click("#preview-button")
    page.wait_for_selector("#preview")
    assert page.locator("#window-warning").count() == 0
    assert page.inner_text("#pv-messages") == str(ROWS)
    assert "客户0" + TEMPLATE_END in page.inner_text("#samples")
    assert words["reason"] in page.inner_text("#rejected")
    assert "¥2.00" in page.inner_text("#cost")
    shot(page, "upload-preview")

    # A proof to the sender's own number: the gateway's answer shows on the page
    page.fill("#proof-numbers", "13800138000")
    page.click("#proof-button")
    page.wait_for_selector("#proof")
    expect(page.locator("#proof-results .proof-state")).not_to_have_text(
        ["等待中" if lang == "zh" else "waiting"]
    )
    expect(page.locator("#proof-results")).to_contain_text("13800138000")
    shot(page, "proof")

    # Create and start; the bars and the state follow, and so do the buttons.
    page.click("#create-button")
    page.wait_for_url("**/campaigns/*")
    campaign_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#pause")).to_be_hidden()
    page.click("#start")
    page.wait_for_url("**/campaigns/*")
    # A locator, not wait_for_function: the page's CSP forbids the eval that one would need.
    expect(page.locator("#bar-sent-text")).to_have_text(f"{ROWS} / {ROWS}", timeout=60_000)
    expect(page.locator("#bar-delivered-text")).to_have_text(f"{ROWS} / {ROWS}", timeout=60_000)
    expect(page.locator("#state")).to_have_text(words["completed"], timeout=60_000)
    page.wait_for_selector("#chart polyline.delivered")
    expect(page.locator("#pause")).to_be_hidden()
    expect(page.locator("#cancel")).to_be_hidden()
    expect(page.locator("#retry")).to_be_hidden()  # every message delivered: nothing to retry
    shot(page, "campaign")

    with page.expect_download() as download_info:
        page.click("#export-xlsx")
    download = download_info.value
    saved = contacts.parent / f"{lang}-{download.suggested_filename}"
    download.save_as(saved)
    sheet = openpyxl.load_workbook(saved).active
    assert sheet is not None
    # The file and its sheet tab named in the page's language
    assert download.suggested_filename == words["download"] % campaign_id
    assert sheet.title == words["sheet"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][1] == words["delivered_header"] and sheet.freeze_panes == "A2"
    assert [r[1] for r in rows[1:]] == [f"1380013{i:04d}" for i in range(ROWS)] + ["12345"]  # every number
    assert {r[4] for r in rows[1:]} == words["states"]
    assert rows[-1][10] == words["reason"]

    page.goto(web.base_url + "/campaigns")
    shot(page, "campaigns")
    return campaign_id


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_given_a_sender_in_a_browser_when_running_a_campaign_then_every_step_speaks_their_language(
    make_web: Callable[..., Web], tmp_path: Path, lang: str, shots: Callable[[Any, str], None]
) -> None:
    sync_api = playwright()
    web = make_web(worker=True)
    rows = [(f"1380013{i:04d}", f"客户{i}") for i in range(ROWS)] + [("12345", "坏号码")]
    contacts = write_contacts(tmp_path / "会员名单.xlsx", rows)
    shot = shots if lang == "zh" else (lambda page, name: None)

    with sync_api.sync_playwright() as p, Beat(web):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            # A Chinese browser: Chinese staff (the English run switches on the sign-in page)
            context = browser.new_context(
                viewport={"width": 1200, "height": 900}, accept_downloads=True, locale="zh-CN"
            )
            page = context.new_page()
            page.set_default_timeout(20_000)
            # The pages run under a CSP without inline script: the browser reports any violation.
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            run_flow(sync_api, page, web, contacts, lang, shot)
            assert violations == []
        finally:
            browser.close()
    ledger = web.sim.ledger()["accepted"]
    assert len(ledger) == ROWS + 1  # the campaign's numbers once each, and the proof
    assert sorted(e["mobile"] for e in ledger).count("13800138000") == 1

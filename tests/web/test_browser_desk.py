"""Issue 24's interactive bits in a real browser (Debian's Chromium, headless, Playwright), in Chinese: the
live counter flags an unknown placeholder and full-width braces as they are typed; the A/B and fallback
section opens when clicked; the campaign page's history, chart time axis and flash follow the campaign
without a reload."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import update

from dispatcher import campaigns
from dispatcher.store import Recipient, utcnow
from tests.helpers import ARGS, CHROMIUM, draft, playwright
from tests.web.conftest import PASSWORD, Web, write_contacts


@pytest.mark.slow
def test_given_a_sender_in_a_browser_then_the_counter_flags_the_section_unfolds_and_the_history_is_live(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    sync_api = playwright()
    expect = sync_api.expect
    web = make_web()
    contacts = write_contacts(tmp_path / "名单.xlsx", [("13800138000", "客户0")])
    campaign_id = draft(web)

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN").new_page()
            page.set_default_timeout(15_000)
            page.goto(web.base_url + "/campaigns/new")
            page.fill("input[name=name]", "sender")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/campaigns/new")
            page.set_input_files("input[type=file]", str(contacts))
            page.click("#upload-button")
            page.wait_for_url("**/uploads/*")

            # The counter: nothing flagged for a known column; {城市} and ｛姓名｝ flagged as typed
            flags = page.locator("#counter-flags")
            page.locator("#template").type("{姓名}您好，回T退订【测试】")
            expect(flags).to_be_hidden()
            page.locator("#template").type("{城市}｛姓名｝")
            expect(flags).to_be_visible()
            expect(flags).to_contain_text("名单中没有 {城市} 这一列")
            expect(flags).to_contain_text("｛姓名｝ 用的是全角括号，会原样发出：请写成 {姓名}")

            # The A/B and fallback section: folded, opened by a click
            expect(page.locator("#template_b")).to_be_hidden()
            page.click("#routing-fields summary")
            expect(page.locator("#template_b")).to_be_visible()

            # The campaign page: started by hand here, then paused elsewhere; the page follows
            page.goto(f"{web.base_url}/campaigns/{campaign_id}")
            expect(page.locator("#retry")).to_be_hidden()
            page.click("#start")
            page.wait_for_url(f"**/campaigns/{campaign_id}")
            started = page.locator("main > p.flash[role=status]")
            expect(started).to_contain_text("已开始")
            expect(page.locator("#history tbody tr").first).to_contain_text("→ 发送中")
            expect(page.locator("#history tbody tr").nth(1)).to_contain_text("手动开始")
            campaigns.pause(web.sessions, campaign_id, "scheduler")
            expect(page.locator("#history tbody tr").first).to_contain_text("系统调度")
            expect(page.locator("#history tbody tr").first).to_contain_text("→ 已暂停")
            expect(started).to_have_count(0)  # the campaign moved on: "已开始" is gone
            # The chart's time axis: China time at its start, middle and end
            with web.sessions() as session:
                session.execute(
                    update(Recipient)
                    .where(Recipient.campaign_id == campaign_id)
                    .values(submitted_at=utcnow())
                )
                session.commit()
            expect(page.locator("#chart text.tick")).to_have_count(3)
            expect(page.locator("#chart text.tick").first).to_have_text(re.compile(r"^\d\d:\d\d:\d\d$"))
        finally:
            browser.close()

"""Issue 14 in a real browser (Debian's Chromium, headless, Playwright): a sender creates an A/B campaign
with a fallback account from the web form; its first account's address refuses connections, so the
campaign moves to the fallback; the campaign page shows each variant's figures (and the accounts'), live.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from dispatcher.store import Recipient
from tests.helpers import ARGS, CHROMIUM, Beat, playwright
from tests.vendors.loopback import dead_url
from tests.web.conftest import PASSWORD, Web, write_contacts

ROWS = 60
A = "{姓名}您好，会员日全场8折，回T退订【测试】"
B = "{姓名}您好，今天到店有礼，回T退订【测试】"


@pytest.mark.slow
def test_given_a_sender_in_a_browser_when_creating_an_ab_campaign_with_a_fallback_then_the_page_shows_each_variant(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    sync_api = playwright()
    expect = sync_api.expect
    # An extra yunxin account at an address that refuses connections: the campaign's first account;
    # after 1 s of "try later" the campaign moves on to its fallback
    bad = f"yx-dead-{uuid.uuid4().hex[:6]}"
    extra = (
        f'failover_after = 1\n[accounts."{bad}"]\nvendor = "yunxin"\nbase_url = "{dead_url()}"\n'
        'user = "demo"\npassword = "demo"\nchannel = "37"\nrate_limit = 1000\n'
    )
    web = make_web(worker=True, settings_toml=extra)
    rows = [(f"1380013{i:04d}", f"客户{i}") for i in range(ROWS)]
    contacts = write_contacts(tmp_path / "名单.xlsx", rows)
    trigger = web.accounts["trigger"]

    with sync_api.sync_playwright() as p, Beat(web):
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_context(viewport={"width": 1200, "height": 900}, locale="zh-CN").new_page()
            page.set_default_timeout(20_000)
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            page.goto(web.base_url + "/campaigns/new")
            page.fill("input[name=name]", "sender")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/campaigns/new")
            page.set_input_files("input[type=file]", str(contacts))
            page.click("#upload-button")
            page.wait_for_url("**/uploads/*")

            # The form: account, template A, template B and its split, the fallback account
            page.select_option("#account", bad)
            page.fill("#template", A)
            page.click("#routing-fields summary")  # folded until opened
            page.fill("#template_b", B)
            page.fill("#split", "50,50")
            page.select_option("#fallback-1", trigger)
            page.click("#preview-button")
            page.wait_for_selector("#preview")
            assert page.input_value("#template_b") == B  # the form keeps what was typed
            assert page.input_value("#fallback-1") == trigger
            page.click("#create-button")
            page.wait_for_url("**/campaigns/*")
            campaign_id = int(page.url.rsplit("/", 1)[1])
            expect(page.locator("#variant-table")).to_contain_text("版本 A")
            page.click("#start")
            page.wait_for_url("**/campaigns/*")

            # Then every message goes (through the fallback), and the variants' figures fill in, live
            expect(page.locator("#bar-sent-text")).to_have_text(f"{ROWS} / {ROWS}", timeout=60_000)
            with web.sessions() as session:
                variants = Counter(
                    session.execute(
                        select(Recipient.variant).where(Recipient.campaign_id == campaign_id)
                    ).scalars()
                )
            assert set(variants) == {"A", "B"} and sum(variants.values()) == ROWS
            for name in ("A", "B"):
                expect(page.locator(f"#variant-{name}-recipients")).to_have_text(str(variants[name]))
                expect(page.locator(f"#variant-{name}-accepted")).to_have_text(
                    str(variants[name]), timeout=60_000
                )
                expect(page.locator(f"#variant-{name}-delivered")).to_have_text(
                    str(variants[name]), timeout=60_000
                )
            expect(page.locator(f"#account-table tr[data-account='{trigger}']")).to_contain_text(str(ROWS))
            page.reload()
            expect(page.locator("#accounts .failover")).to_contain_text(trigger)
            assert page.locator("#variant-chart rect").count() == 2
            assert violations == []
        finally:
            browser.close()
    ledger = web.sim.ledger()["accepted"]
    assert Counter(e["mobile"] for e in ledger) == Counter(m for m, _ in rows)
    assert {e["vendor"] for e in ledger} == {"trigger"}

"""The whole flow in a real browser: Debian's Chromium, headless, driven by Playwright.

Sign in → upload a generated xlsx → preview → create → start → watch progress reach all accepted →
export. With ``DISPATCHER_SCREENSHOTS=docs`` the main pages are saved there as PNGs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.web.conftest import PASSWORD, Web, write_contacts

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROWS = 40


@pytest.mark.slow
def test_given_a_sender_in_a_browser_when_running_a_campaign_then_progress_reaches_all_and_export_downloads(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    if os.environ.get("CI"):
        # CI installs both (.ci/extra-setup): there a missing browser is a failure, not a skip.
        import playwright.sync_api as sync_api

        assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/extra-setup installs it"
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
        if not Path(CHROMIUM).exists():
            pytest.skip("Debian's chromium is not installed (.ci/extra-setup installs it)")
    shots = os.environ.get("DISPATCHER_SCREENSHOTS")
    web = make_web(worker=True)
    rows = [(f"1380013{i:04d}", f"客户{i}") for i in range(ROWS)] + [("12345", "坏号码")]
    contacts = write_contacts(tmp_path / "会员名单.xlsx", rows)

    def shot(page: object, name: str) -> None:
        if shots:
            Path(shots).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(shots) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]

    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900}, accept_downloads=True)
            page.set_default_timeout(20_000)
            # The pages run under a CSP without inline script: the browser reports any violation.
            violations: list[str] = []
            page.on(
                "console",
                lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
            )
            # Sign in: the protected page sends us to the form and back.
            page.goto(web.base_url + "/campaigns/new")
            shot(page, "sign-in")
            page.fill("input[name=name]", "sender")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/campaigns/new")

            # Upload, then compose: the columns are offered as placeholders.
            page.set_input_files("input[type=file]", str(contacts))
            page.click("#upload-button")
            page.wait_for_url("**/uploads/*")
            page.select_option("#account", web.accounts["yunxin"])
            page.click("button.chip[data-field='姓名']")
            page.locator("#template").press("End")
            page.locator("#template").type("您好，会员日全场8折，回T退订【测试】")
            assert page.input_value("#template") == "{姓名}您好，会员日全场8折，回T退订【测试】"

            # Preview: samples with segments, the rejected row, the cost and the balance.
            page.click("#preview-button")
            page.wait_for_selector("#preview")
            assert page.inner_text("#pv-messages") == str(ROWS)
            assert "客户0您好，会员日全场8折，回T退订【测试】" in page.inner_text("#samples")
            assert "12345" in page.inner_text("#rejected")
            assert "¥2.00" in page.inner_text("#cost")
            assert "balance" in page.inner_text("#balance")
            shot(page, "upload-preview")

            # Create and start; the page's polling shows every message accepted.
            page.click("#create-button")
            page.wait_for_url("**/campaigns/*")
            page.click("#start")
            page.wait_for_url("**/campaigns/*")
            # A locator, not wait_for_function: the page's CSP forbids the eval that one would need.
            sync_api.expect(page.locator("#count-accepted")).to_have_text(str(ROWS), timeout=60_000)
            page.wait_for_selector("#chart polyline.accepted")
            assert page.inner_text("#state") in ("running", "completed")
            shot(page, "campaign")

            with page.expect_download() as download_info:
                page.click("#export-xlsx")
            download = download_info.value
            saved = tmp_path / download.suggested_filename
            download.save_as(saved)
            assert saved.suffix == ".xlsx" and saved.stat().st_size > 0
            import openpyxl

            sheet = openpyxl.load_workbook(saved, read_only=True).active
            assert sheet is not None
            cells = [str(c) for row in sheet.iter_rows(values_only=True) for c in row if c is not None]
            assert sum("13800130" in c for c in cells) >= ROWS

            page.goto(web.base_url + "/campaigns")
            shot(page, "campaigns")
            assert violations == []
        finally:
            browser.close()
    assert len(web.sim.ledger()["accepted"]) == ROWS  # type: ignore[arg-type]

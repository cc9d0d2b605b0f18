"""Issue 24's web pages over real HTTP, in Chinese: the compose page's order and folded section, amounts
with separators, the proof's text and meaning without a campaign number, the campaign page's history
(live through the progress API, a manual start said as such, actors in words), the window badge and the
retry button only when something can be retried."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update

from dispatcher import campaigns
from dispatcher.labels import amount
from dispatcher.proofs import outcome
from dispatcher.store import Chunk, Recipient
from tests.helpers import draft, upload
from tests.web.conftest import Web, csrf_of, write_contacts

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"


def _closed_window() -> str:
    local = datetime.now(ZoneInfo("Asia/Shanghai"))
    return f"{local.hour + 1:02d}:00-{local.hour + 2:02d}:00" if local.hour <= 21 else "00:00-01:00"


def _form(web: Web, html: str, **extra: str) -> dict[str, str]:
    return {"csrf": csrf_of(html), "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["yunxin"], **extra}  # fmt: skip


def test_given_a_preview_then_its_figures_come_before_the_buttons_and_the_ab_section_is_folded(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三"), ("12345", "李四")])
    html = c.post(page + "/preview", data=_form(web, c.get(page).text, window=_closed_window())).text
    # The rejected rows, the cost and the window warning, then the create and proof buttons
    positions = [html.index(f'id="{i}"') for i in ("window-warning", "cost", "rejected", "create-button",
                                                     "proof-button")]  # fmt: skip
    assert positions == sorted(positions)
    # The A/B and fallback section is folded until opened; open when it holds something
    assert re.search(r'<details class="routing" id="routing-fields">', html)
    opened = c.post(page + "/preview", data=_form(web, html, template_b="您好{姓名}，回T退订【测试】")).text
    assert re.search(r'<details class="routing" id="routing-fields" open>', opened)
    # The balance with thousands separators (the simulator's accounts hold 100000000)
    assert re.search(r'id="balance">余额： <b>100,000,000</b>', html)


def test_amounts_keep_their_decimals_and_get_separators() -> None:
    assert amount(100000000) == "100,000,000"
    assert amount("12345.50") == "12,345.50"
    assert amount("0.10") == "0.10"
    assert amount("未知") == "未知"


def test_given_a_proof_then_the_page_shows_its_text_and_no_campaign_number(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三")])
    sent = c.post(page + "/proof", data=_form(web, c.get(page).text, proof_numbers="13800138000"))
    assert sent.status_code == 200, sent.text
    section = sent.text[sent.text.index('id="proof"') :]
    proof_id = int(re.search(r'data-proof="(\d+)"', sent.text).group(1))  # type: ignore[union-attr]
    assert "发送的内容：" in section and "张三您好，会员日全场8折，回T退订【测试】" in section
    assert f"活动 {proof_id}" not in section  # a proof is no campaign people count
    own = c.get(f"/campaigns/{proof_id}").text
    assert "<h1>样张 · 名单.xlsx" in own and f"活动 {proof_id}" not in own
    assert "taken by the gateway" not in section and "网关已接收，等待状态报告" in section  # for the script
    # The answer's meaning, not the report's code: DELIVRD is 成功送达手机
    with web.sessions() as session:
        session.execute(
            update(Recipient)
            .where(Recipient.campaign_id == proof_id)
            .values(state="delivered", report_status="DELIVRD", batch_id="B-1")
        )
        session.commit()
        found = outcome(session, proof_id)["numbers"][0]
    assert found["meaning_zh"] == "成功送达手机" and found["meaning"] == "delivered to the phone"


def test_given_a_campaign_started_by_hand_then_its_history_says_so_in_words_and_the_api_carries_it(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    campaign_id = draft(web)
    campaigns.start(web.sessions, campaign_id, "scheduler")
    html = c.get(f"/campaigns/{campaign_id}").text
    history = html[html.index('id="history"') :]
    assert "手动开始" in history and "→ 已定时" not in history and "→ 发送中" in history
    assert "系统调度" in history and "scheduler" not in history
    # The page's script redraws the history from the progress API, said in the page's language
    entries = c.get(f"/api/campaigns/{campaign_id}/progress").json()["history"]
    assert [e["action_shown"] for e in entries] == ["→ 发送中", "手动开始", "创建"]
    assert entries[0]["actor"] == "scheduler" and entries[0]["actor_shown"] == "系统调度"


def test_given_a_running_campaign_outside_its_window_then_the_badge_says_it_waits_for_the_window(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    path = write_contacts(web.tmp / "c.xlsx", [("13900000001", "张三")])
    created = campaigns.create(
        web.sessions, web.settings, path, TEMPLATE, web.accounts["yunxin"], actor="sender",
        window=_closed_window(),
    )  # fmt: skip
    campaigns.start(web.sessions, created.campaign_id, "sender")
    html = web.signed_in("sender", language="zh-CN").get(f"/campaigns/{created.campaign_id}").text
    badge = re.search(r'<span class="state ([^"]*)" id="state">([^<]*)<', html)
    assert badge and badge.group(2) == "等待发送时段" and "waiting" in badge.group(1)


def test_given_nothing_to_retry_then_the_retry_button_is_hidden_and_shown_once_something_failed(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    campaign_id = draft(web, rows=2)
    campaigns.start(web.sessions, campaign_id, "sender")

    def retry_form() -> str:
        html = c.get(f"/campaigns/{campaign_id}").text
        return re.search(r'<form[^>]*action="/campaigns/\d+/retry"[^>]*>', html).group(0)  # type: ignore[union-attr]

    assert "hidden" in retry_form() and 'data-needs="retryable"' in retry_form()
    with web.sessions() as session:  # a request the gateway asked to send later, its recipients failed
        session.execute(
            update(Chunk)
            .where(Chunk.campaign_id == campaign_id)
            .values(state="failed", error_class="retry_later")
        )
        session.execute(update(Recipient).where(Recipient.campaign_id == campaign_id).values(state="failed"))
        session.commit()
    assert "hidden" not in retry_form()
    assert c.get(f"/api/campaigns/{campaign_id}").json()["retryable"] == 2

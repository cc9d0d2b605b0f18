"""The web app in Chinese first: pages, states, flash messages, errors, reasons, China time; English by the
switch or the browser; the preview's window warning, the proof, and the API's machine-readable side."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from dispatcher.store import AuditEntry, Campaign, account_errors
from dispatcher.vendors import trigger
from tests.helpers import upload
from tests.web.conftest import Web, csrf_of

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_given_no_choice_then_pages_are_chinese_and_the_switch_or_the_browser_makes_them_english(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    chinese = web.client(language="")  # a browser that says nothing
    page = chinese.get("/login").text
    assert '<html lang="zh-CN">' in page and ">登录<" in page and "Sign in" not in page
    # The switch: English now, and remembered by a cookie
    switched = chinese.get("/login?lang=en")
    assert '<html lang="en">' in switched.text and ">Sign in<" in switched.text
    assert "lang=en" in switched.headers["set-cookie"]
    assert ">Sign in<" in chinese.get("/login").text
    assert ">登录<" in chinese.get("/login?lang=zh").text
    # A browser asking for English gets English; one asking for Chinese (or anything else) Chinese
    assert ">Sign in<" in web.client(language="en-GB,en;q=0.9").get("/login").text
    assert ">登录<" in web.client(language="zh-CN,zh;q=0.9,en;q=0.8").get("/login").text
    assert ">登录<" in web.client(language="fr").get("/login").text


def test_given_a_campaign_then_its_pages_say_states_times_and_messages_in_chinese(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三"), ("12345", "李四")])
    form = {"csrf": csrf_of(c.get(page).text), "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["yunxin"], "start_at": "2030-06-01T09:00"}  # fmt: skip
    preview = c.post(page + "/preview", data=form).text
    # The rejected row says its row and column in Chinese
    assert "第 3 行，手机号列：不是大陆手机号" in preview
    created = c.post(page + "/create", data=form)
    assert created.status_code == 303
    campaign_url = created.headers["location"]
    campaign_id = int(campaign_url.rsplit("/", 1)[1])

    # The flash message, the state, the start time in China time (09:00 as typed), the history
    html = c.get(campaign_url).text
    assert f"活动 {campaign_id} 已创建（1 条短信）" in html
    assert ">已定时<" in html and "2030-06-01 09:00（北京时间）" in html
    assert "UTC" not in html
    assert "已定时：" in html and "（北京时间）开始发送" in html  # what it waits for
    with web.sessions() as session:
        created_at = (
            session.execute(select(AuditEntry.at).where(AuditEntry.campaign_id == campaign_id))
            .scalars()
            .first()
        )
    assert created_at is not None
    assert created_at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") in html  # history in China time
    listing = c.get("/campaigns").text
    assert ">已定时<" in listing and "2030-06-01 09:00（北京时间）" in listing and "UTC" not in listing

    # An action the state does not allow: the error, in Chinese, names both states
    token = csrf_of(html)
    c.post(f"/campaigns/{campaign_id}/resume", data={"csrf": token})
    assert f"活动 {campaign_id} 当前为「已定时」，不能变为「发送中」" in c.get(campaign_url).text
    c.post(f"/campaigns/{campaign_id}/pause", data={"csrf": token})
    assert f"活动 {campaign_id} 当前为「已定时」，不能变为「已暂停」" in c.get(campaign_url).text
    # An error page in Chinese
    missing = c.get("/campaigns/999999")
    assert missing.status_code == 404 and "没有活动 999999" in missing.text

    # The API is for machines: UTC ISO-8601, the state and what it waits for as words of the contract
    status = c.get(f"/api/campaigns/{campaign_id}").json()
    assert status["state"] == "scheduled" and status["waiting"] == "schedule"
    assert datetime.fromisoformat(status["start_at"]) == datetime(2030, 6, 1, 1, 0, tzinfo=UTC)
    assert status["start_at"].endswith("+00:00")


def _window_excluding_now() -> str:
    local = datetime.now(SHANGHAI)
    return f"{local.hour + 1:02d}:00-{local.hour + 2:02d}:00" if local.hour <= 21 else "00:00-01:00"


def test_given_a_start_outside_the_window_when_previewing_then_the_page_and_the_api_warn(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三")])
    window = _window_excluding_now()
    form = {"csrf": csrf_of(c.get(page).text), "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["yunxin"], "window": window}  # fmt: skip
    html = c.post(page + "/preview", data=form).text
    assert 'id="window-warning"' in html
    assert re.search(
        r"不在发送时段内（"
        + re.escape(window)
        + r"，北京时间）：启动后会等待，于 \S+ \S+（北京时间） ?开始发送",
        html,
    )
    # Inside the window: no warning
    form["window"] = "00:00-24:00"
    assert 'id="window-warning"' not in c.post(page + "/preview", data=form).text
    # The API's preview says it as data
    path = web.tmp / "名单.xlsx"
    files = {"file": ("名单.xlsx", path.read_bytes(), "application/octet-stream")}
    data = {"template": TEMPLATE, "account": web.accounts["yunxin"], "window": window}
    api = web.signed_in("sender")
    preview = api.post("/api/campaigns/preview", data=data, files=files, headers={"x-csrf-token": _csrf(api)})
    assert preview.status_code == 200, preview.text
    found = preview.json()
    assert found["waiting"] == "window"
    opens = datetime.fromisoformat(found["window_opens_at"])
    assert timedelta(0) < opens - datetime.now(UTC) <= timedelta(hours=25)


def _csrf(c: object) -> str:
    return csrf_of(c.get("/campaigns").text)  # type: ignore[attr-defined]


def test_given_a_preview_when_sending_a_proof_then_the_first_message_goes_to_the_numbers_typed_apart(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(worker=True)
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三"), ("13900000002", "李四")])
    form = {"csrf": csrf_of(c.get(page).text), "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["yunxin"]}  # fmt: skip
    # Refused: not numbers, too many, or on the opt-out list; said in Chinese
    bad = c.post(page + "/proof", data={**form, "proof_numbers": "13800138000 12345"})
    assert bad.status_code == 400 and "12345 不是大陆手机号" in bad.text
    many = c.post(
        page + "/proof", data={**form, "proof_numbers": " ".join(f"1380013800{i}" for i in range(6))}
    )
    assert "样张最多发给 5 个号码，您填了 6 个" in many.text
    # When the sender sends a proof to two numbers of their own
    sent = c.post(page + "/proof", data={**form, "proof_numbers": "13800138000，+86 138 0013 8001"})
    assert sent.status_code == 200, sent.text
    proof_id = int(re.search(r'data-proof="(\d+)"', sent.text).group(1))  # type: ignore[union-attr]
    assert "已发送至 13800138000, 13800138001" in sent.text and 'id="create-button"' in sent.text

    # Then the gateway takes the rendered first message for exactly those numbers, and the page's API
    # shows its answer
    def outcome() -> dict[str, object]:
        response = c.get(f"/api/proofs/{proof_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    web.wait_for(
        lambda: all(n["state"] != "queued" and n["state"] != "sending" for n in outcome()["numbers"])
    )  # type: ignore[index, union-attr]
    found = outcome()
    assert [n["mobile"] for n in found["numbers"]] == ["13800138000", "13800138001"]  # type: ignore[index, union-attr]
    assert {n["state"] for n in found["numbers"]} <= {"accepted", "delivered"}  # type: ignore[union-attr]
    assert all(n["batch_id"] for n in found["numbers"])  # type: ignore[union-attr, index]  (the gateway's answer)
    ledger = web.sim.ledger()["accepted"]
    assert sorted(e["mobile"] for e in ledger) == ["13800138000", "13800138001"]  # type: ignore[index]
    assert {e["content"] for e in ledger} == {"张三您好，会员日全场8折，回T退订【测试】"}  # type: ignore[index]
    # ... apart from the real campaigns: a proof campaign, audited, not in the list
    with web.sessions() as session:
        proof = session.get(Campaign, proof_id)
        assert proof is not None and proof.proof and proof.created_by == "sender"
        actions = (
            session.execute(select(AuditEntry.action).where(AuditEntry.campaign_id == proof_id))
            .scalars()
            .all()
        )
    assert "campaign.proof" in actions
    assert f'href="/campaigns/{proof_id}"' not in c.get("/campaigns").text
    # A proof's outcome is no business of a viewer
    assert web.signed_in("viewer").get(f"/api/proofs/{proof_id}").status_code == 403


def test_given_no_internet_then_the_api_docs_come_from_the_app_itself(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.signed_in("viewer")
    docs = c.get("/docs")
    assert docs.status_code == 200
    assert "/static/docs/swagger-ui-bundle.js" in docs.text and "/static/docs/swagger-ui.css" in docs.text
    assert "https://" not in docs.text and "https:" not in docs.headers["content-security-policy"]
    bundle = c.get("/static/docs/swagger-ui-bundle.js")
    assert bundle.status_code == 200 and len(bundle.content) > 500_000
    assert c.get("/static/docs/swagger-ui.css").status_code == 200
    # still behind sign-in
    assert web.client().get("/docs").status_code == 303


def test_given_an_account_error_then_every_page_shows_senders_and_admins_a_banner_until_it_clears(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    name = web.accounts["trigger"]
    info = trigger.classify(-3)
    # Given the account's pulls were refused for a wrong password
    with web.sessions() as session:
        account_errors.record(
            session, web.settings.account(name), "reports", -3, info.meaning, info.meaning_en
        )
        session.commit()
    sender, admin, viewer = (
        web.signed_in("sender", ""),
        web.signed_in("admin", ""),
        web.signed_in("viewer", ""),
    )
    # Then every page of a sender and of an admin names the account and the error, in Chinese ...
    for client, path in (
        (sender, "/campaigns"),
        (sender, "/replies"),
        (admin, "/users"),
        (admin, "/accounts"),
    ):
        page = client.get(path).text
        assert f"账号 {name} 无法获取状态报告和回复：-3 用户名或密码错误" in page, path
    assert "用户名或密码错误" not in viewer.get("/campaigns").text
    # ... in English when asked
    english = web.signed_in("sender", "en").get("/campaigns").text
    assert f"Account {name} cannot fetch its reports and replies: -3 wrong user name or password" in english
    # When a pull succeeds again: the banner is gone
    with web.sessions() as session:
        account_errors.clear(session, name)
        session.commit()
    assert "用户名或密码错误" not in sender.get("/campaigns").text

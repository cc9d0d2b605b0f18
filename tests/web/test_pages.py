"""The upload → compose → preview → create pages, over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable

from sqlalchemy import select

from dispatcher.store import Campaign
from tests.helpers import upload
from tests.web.conftest import Web, csrf_of

TEMPLATE = "{姓名}您好，会员日全场8折【测试】"


def test_given_an_upload_when_composing_then_sheets_and_columns_are_offered(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    page = upload(web, c, [("13900000001", "张三")])
    html = c.get(page).text
    assert "<option selected>客户</option>" in html and "<option>说明</option>" in html
    assert 'data-field="姓名"' in html and 'data-field="手机号"' in html  # placeholders
    assert re.search(r"<option selected>手机号</option>", html)  # the detected phone column


def test_given_a_list_when_previewing_then_samples_segments_rejections_warnings_and_cost_are_shown(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    page = upload(
        web, c, [("13900000001", "张三"), ("12345", "李四"), ("13900000001", "王五"), ("13900000002", "赵六")]
    )
    form = {
        "csrf": csrf_of(c.get(page).text),
        "sheet": "客户",
        "phone_column": "手机号",
        "template": TEMPLATE,
        "account": web.accounts["yunxin"],
    }
    r = c.post(page + "/preview", data=form)
    assert r.status_code == 200, r.text
    html = r.text
    assert "张三您好，会员日全场8折【测试】" in html and "赵六您好" in html
    assert 'id="pv-messages">2<' in html
    assert "12345" in html and "duplicate of row 2" in html  # rejected rows with reasons
    assert "opt out" in html  # the template has no 回T退订: warned
    assert "¥0.10" in html  # 2 one-segment messages × 0.05
    assert 'id="balance">balance: <b>' in html  # the simulator's balance
    assert 'id="create-button"' in html

    r = c.post(page + "/create", data=form)
    assert r.status_code == 303
    campaign_id = int(r.headers["location"].rsplit("/", 1)[1])
    with web.sessions() as session:
        campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id)).scalar_one()
    assert (campaign.state, campaign.created_by, campaign.template) == ("draft", "sender", TEMPLATE)
    assert "2 messages" in c.get(f"/campaigns/{campaign_id}").text
    # The upload is used up.
    assert c.get(page).status_code == 400


def test_given_a_bad_template_when_previewing_then_a_clear_error(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.signed_in("sender")
    page = upload(web, c, [("13900000001", "张三")])
    form = {
        "csrf": csrf_of(c.get(page).text),
        "template": "{城市}见【测试】",
        "account": web.accounts["yunxin"],
    }
    r = c.post(page + "/preview", data=form)
    assert r.status_code == 400 and "unknown placeholder {城市}" in r.text


def test_given_a_file_over_the_limit_or_of_a_wrong_type_when_uploading_then_refused(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(max_upload_bytes=4096)
    c = web.signed_in("sender")
    token = csrf_of(c.get("/campaigns/new").text)
    r = c.post(
        "/uploads", data={"csrf": token}, files={"file": ("big.csv", b"13900000001,a\n" * 1000, "text/csv")}
    )
    assert r.status_code == 413 and "larger than the limit" in r.text
    r = c.post("/uploads", data={"csrf": token}, files={"file": ("list.pdf", b"%PDF-1.4", "application/pdf")})
    assert r.status_code == 400 and "unsupported file type" in r.text
    assert not any((web.tmp / "uploads").iterdir())


def test_given_someone_elses_upload_when_opened_then_not_found(make_web: Callable[..., Web]) -> None:
    web = make_web()
    page = upload(web, web.signed_in("sender"), [("13900000001", "张三")])
    other = web.client()
    with web.sessions() as session:
        from dispatcher.web.auth import add_user

        add_user(session, "sender2", "another password", "sender", actor="test")
    from tests.web.conftest import login

    login(other, "sender2", "another password")
    r = other.get(page)
    assert r.status_code == 400 and "does not exist" in r.text


def test_given_a_viewer_when_opening_new_campaign_then_403(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.signed_in("viewer")
    assert c.get("/campaigns/new").status_code == 403
    assert "New campaign" not in c.get("/campaigns").text


def test_given_a_sender_uploading_over_and_over_then_only_their_latest_uploads_are_kept_on_disk(
    make_web: Callable[..., Web],
) -> None:
    # Uploads are kept a day: without a cap per user, a sender's script could fill the disk the store
    # and the broker live on (50 MB a request).
    web = make_web()
    admin = web.signed_in("admin")
    kept_by_admin = upload(web, admin, [("13900000001", "张三")])
    c = web.signed_in("sender")
    pages = [upload(web, c, [("13900000001", "张三")]) for _ in range(25)]
    folders = [p for p in (web.tmp / "uploads").iterdir() if p.is_dir()]
    owners = [(p / ".owner").read_text(encoding="utf-8") for p in folders]
    assert owners.count("sender") == 20 and owners.count("admin") == 1  # the 20 latest
    r = c.get(pages[0])
    assert r.status_code == 400 and "does not exist or has expired" in r.text
    assert c.get(pages[-1]).status_code == 200
    assert admin.get(kept_by_admin).status_code == 200  # another user's uploads are theirs to keep


def test_given_an_entinfo_account_when_previewing_then_the_proof_suggests_a_text_showing_its_encoding(
    make_web: Callable[..., Web],
) -> None:
    # entinfo's documents disagree on how mdsmssend reads '+', '%' and rare characters: the proof is
    # the way to find out, so the page suggests what to send and asks what arrived
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三")])
    pages = {}
    for vendor in ("entinfo", "yunxin"):
        form = {"csrf": csrf_of(c.get(page).text), "sheet": "客户", "phone_column": "手机号",
                "template": TEMPLATE, "account": web.accounts[vendor]}  # fmt: skip
        r = c.post(page + "/preview", data=form)
        assert r.status_code == 200, r.text
        pages[vendor] = r.text
    assert 'id="encoding-probe"' in pages["entinfo"] and "1+1=2，满100%减，喆" in pages["entinfo"]
    assert "content_encoding" in pages["entinfo"]
    assert 'id="encoding-probe"' not in pages["yunxin"]

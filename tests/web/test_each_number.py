"""The compose form's "send to each" checkbox, and the export's download name in Chinese."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from sqlalchemy import select

from dispatcher.store import Recipient
from tests.helpers import upload
from tests.web.conftest import Web, csrf_of

TEMPLATE = "{姓名}您好，回T退订【测试】"


def test_given_a_cell_of_two_numbers_when_each_is_ticked_then_both_get_the_row_and_the_export_is_named_in_chinese(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001(南)13900000002(北)", "张三"), ("13900000003", "李四")])
    form = {"csrf": csrf_of(c.get(page).text), "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["yunxin"]}  # fmt: skip
    # Unticked: the preview says the cell holds two numbers and that only the first is sent to
    preview = c.post(page + "/preview", data=form).text
    assert "含两个号码" in preview and "只发送到第一个号码" in preview
    assert 'name="each_number"' in preview
    # Ticked: the preview keeps the box ticked, and the campaign sends the row to both numbers
    ticked = c.post(page + "/preview", data={**form, "each_number": "1"}).text
    assert "每个号码各发一条" in ticked and 'value="1" checked' in ticked
    created = c.post(page + "/create", data={**form, "each_number": "1"})
    assert created.status_code == 303, created.text
    campaign_id = int(created.headers["location"].rsplit("/", 1)[1])
    with web.sessions() as session:
        stored = session.execute(
            select(Recipient.row_number, Recipient.mobile)
            .where(Recipient.campaign_id == campaign_id)
            .order_by(Recipient.position)
        ).all()
    assert [tuple(r) for r in stored] == [(2, "13900000001"), (2, "13900000002"), (3, "13900000003")]

    download = c.get(f"/campaigns/{campaign_id}/export?format=xlsx")
    assert download.status_code == 200
    wanted = quote(f"活动{campaign_id}-发送结果.xlsx")
    assert f"filename*=utf-8''{wanted}" in download.headers["content-disposition"]

"""The compose preview (page and API) says how many recipients the frequency caps would hold back now."""

from __future__ import annotations

from collections.abc import Callable

from dispatcher.store.caps import today
from dispatcher.store.models import ContactCount
from tests.helpers import XLSX, basic, upload
from tests.web.conftest import Web, csrf_of, write_contacts

TEMPLATE = "{姓名}您好，回T退订【测试】"


def test_given_a_number_that_got_its_message_today_when_previewing_then_the_page_and_the_api_count_it_capped(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(settings_toml='frequency_caps = ["1/1d"]')
    with web.sessions() as session:
        session.add(ContactCount(mobile="13900000001", day=today(session.connection()), sent=1))
        session.commit()
    rows = [("13900000001", "张三"), ("13900000002", "李四"), ("13900000003", "王五")]
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, rows)
    form = {"csrf": csrf_of(c.get(page).text), "template": TEMPLATE, "account": web.accounts["yunxin"]}
    r = c.post(page + "/preview", data=form)
    assert r.status_code == 200
    assert '<b id="pv-capped">1</b> 条现在会被频次上限拦下' in r.text

    path = write_contacts(web.tmp / "c.xlsx", rows)
    api = web.client().post(
        "/api/campaigns/preview",
        data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
        files={"file": ("c.xlsx", path.read_bytes(), XLSX)},
        headers=basic("sender"),
    )
    assert api.status_code == 200 and api.json()["capped"] == 1


def test_given_no_cap_when_previewing_then_nothing_is_said_of_caps(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.signed_in("sender", language="zh-CN")
    page = upload(web, c, [("13900000001", "张三")])
    form = {"csrf": csrf_of(c.get(page).text), "template": TEMPLATE, "account": web.accounts["yunxin"]}
    r = c.post(page + "/preview", data=form)
    assert r.status_code == 200 and "pv-capped" not in r.text

"""The web preview (page and API) refuses a template holding a forbidden word the vendor listed."""

from __future__ import annotations

from collections.abc import Callable

from dispatcher import keywords
from tests.helpers import XLSX, basic, upload
from tests.web.conftest import Web, csrf_of, write_contacts

TEMPLATE = "{姓名}您好，六合彩今晚开奖，回T退订【测试】"


def _store_vendor_list(web: Web) -> None:
    account = web.settings.account(web.accounts["yunxin"])
    with web.sessions() as session:
        keywords.save(session, account.name, ["六合彩", "赌博"], actor="test")
        session.commit()


def test_given_a_stored_vendor_word_when_previewing_then_the_page_and_the_api_refuse_naming_it(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    _store_vendor_list(web)
    c = web.signed_in("sender")
    page = upload(web, c, [("13900000001", "张三")])
    form = {"csrf": csrf_of(c.get(page).text), "template": TEMPLATE, "account": web.accounts["yunxin"]}
    r = c.post(page + "/preview", data=form)
    assert r.status_code == 400 and "forbidden keyword &#39;六合彩&#39;" in r.text

    path = write_contacts(web.tmp / "c.xlsx", [("13900000001", "张三"), ("13900000002", "赌博王")])
    files = {"file": ("c.xlsx", path.read_bytes(), XLSX)}
    api = web.client()
    refused = api.post(
        "/api/campaigns/preview",
        data={"template": TEMPLATE, "account": web.accounts["yunxin"]},
        files=files,
        headers=basic("sender"),
    )
    assert refused.status_code == 400 and "forbidden keyword '六合彩'" in refused.json()["detail"]
    # A value that brings a listed word in rejects its row, naming the word.
    fine = api.post(
        "/api/campaigns/preview",
        data={"template": "{姓名}您好，回T退订【测试】", "account": web.accounts["yunxin"]},
        files=files,
        headers=basic("sender"),
    )
    assert fine.status_code == 200
    assert [(r["row"], r["reason"]) for r in fine.json()["rejected"]] == [(3, "forbidden keyword '赌博'")]

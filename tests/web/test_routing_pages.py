"""Issue 14 over HTTP: the preview shows the balance guard's figures, a start the balance does not cover
is refused with them (flashed, the campaign stays a draft), and the form's template B, split and fallback
accounts reach the campaign."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select

from dispatcher.simulator import SimulatorConfig
from dispatcher.store import Campaign
from tests.helpers import upload
from tests.web.conftest import Web, csrf_of

A = "{姓名}您好，会员日全场8折，回T退订【测试】"
B = "{姓名}您好，今天到店有礼，回T退订【测试】"


def test_given_too_little_balance_then_the_preview_says_so_and_the_start_is_refused_with_the_figures(
    make_web: Callable[..., Web],
) -> None:
    # Every simulator account holds 1 (in its unit); at 0.05 a segment that pays for 20 segments
    web = make_web(sim_config=SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, balance=1))
    c = web.signed_in("sender")
    page = upload(web, c, [(f"139{i:08d}", "张三") for i in range(40)])
    form = {
        "csrf": csrf_of(c.get(page).text),
        "sheet": "客户",
        "phone_column": "手机号",
        "template": A,
        "account": web.accounts["yunxin"],
    }
    html = c.post(page + "/preview", data=form).text
    assert 'id="balance-plan"' in html
    assert "it costs 2.00, 20 segments are not covered; a start will be refused" in html

    r = c.post(page + "/create", data=form)
    campaign_id = int(r.headers["location"].rsplit("/", 1)[1])
    token = csrf_of(c.get(f"/campaigns/{campaign_id}").text)
    r = c.post(f"/campaigns/{campaign_id}/start", data={"csrf": token})
    assert r.status_code == 303
    shown = c.get(f"/campaigns/{campaign_id}").text
    assert f"campaign {campaign_id} not started: it costs 2.00 (40 segments × 0.05)" in shown
    assert "holds 1; 20 segments are not covered" in shown
    with web.sessions() as session:
        assert (
            session.execute(select(Campaign.state).where(Campaign.id == campaign_id)).scalar_one() == "draft"
        )


def test_given_the_forms_ab_and_fallback_fields_then_the_campaign_has_them_and_the_preview_plans_the_rest(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(sim_config=SimulatorConfig(report_delay=0.0, seed=3, deliver_ratio=1.0, balance=1))
    c = web.signed_in("sender")
    page = upload(web, c, [(f"139{i:08d}", "张三") for i in range(30)])
    fallbacks = [web.accounts["trigger"], web.accounts["webservice"]]
    form = {
        "csrf": csrf_of(c.get(page).text),
        "sheet": "客户",
        "phone_column": "手机号",
        "template": A,
        "template_b": B,
        "split": "70,30",
        "account": web.accounts["yunxin"],
        "fallback": [fallbacks[0], "", fallbacks[1]],
    }
    html = c.post(page + "/preview", data=form).text
    # 30 segments: yunxin pays for 20, trigger for the other 10 (the balance guard's plan)
    assert f"{web.accounts['yunxin']} takes 20 segments." in html
    assert f"{fallbacks[0]} takes 10 segments." in html
    # ... and template B's own samples, in its share
    assert 'id="samples-b"' in html and "张三您好，今天到店有礼" in html and "(30% of the list)" in html
    bad = c.post(page + "/preview", data={**form, "split": "70"})
    assert bad.status_code == 400 and "split" in bad.text
    r = c.post(page + "/create", data=form)
    assert r.status_code == 303, r.text
    campaign_id = int(r.headers["location"].rsplit("/", 1)[1])
    with web.sessions() as session:
        campaign = session.execute(select(Campaign).where(Campaign.id == campaign_id)).scalar_one()
        assert campaign.fallbacks == fallbacks
        assert [(v["name"], v["template"], v["share"]) for v in campaign.variants or []] == [
            ("A", A, 70.0), ("B", B, 30.0)
        ]  # fmt: skip
    shown = c.get(f"/campaigns/{campaign_id}").text
    assert 'id="variant-table"' in shown and 'id="account-table"' in shown


def test_given_the_api_when_creating_with_two_templates_and_fallbacks_then_the_campaign_has_them(
    make_web: Callable[..., Web],
) -> None:
    from tests.helpers import XLSX, basic
    from tests.web.conftest import write_contacts

    web = make_web()
    c = web.client()
    path = write_contacts(web.tmp / "c.xlsx", [(f"1390000{i:04d}", f"客户{i}") for i in range(20)])
    form = {
        "template": [A, B],
        "split": "60,40",
        "account": web.accounts["yunxin"],
        "fallback": [web.accounts["trigger"], web.accounts["entinfo"]],
    }
    files = {"file": ("c.xlsx", path.read_bytes(), XLSX)}
    r = c.post("/api/campaigns", data=form, files=files, headers=basic("sender"))
    assert r.status_code == 201, r.text
    shown = c.get(f"/api/campaigns/{r.json()['id']}", headers=basic("viewer")).json()
    assert shown["fallbacks"] == [web.accounts["trigger"], web.accounts["entinfo"]]
    assert set(shown["variants"]) == {"A", "B"}
    assert sum(v["recipients"] for v in shown["variants"].values()) == 20
    # A bad split is a clear refusal, not a campaign
    bad = c.post("/api/campaigns", data={**form, "split": "60"}, files=files, headers=basic("sender"))
    assert bad.status_code == 400 and "split" in bad.text


def test_given_a_split_of_odd_digits_or_thousands_of_them_then_the_form_says_so_and_stores_nothing(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    page = upload(web, c, [(f"139{i:08d}", "张三") for i in range(10)])
    form = {
        "csrf": csrf_of(c.get(page).text),
        "sheet": "客户",
        "phone_column": "手机号",
        "template": A,
        "template_b": B,
        "account": web.accounts["yunxin"],
    }
    # A superscript two passes str.isdigit but is no number; 5,000 digits exceed int()'s limit
    for split in ("70,²", "1," + "9" * 5000):
        for step in ("/preview", "/create"):
            r = c.post(page + step, data={**form, "split": split})
            assert r.status_code == 400 and "split" in r.text, (step, r.status_code)
    with web.sessions() as session:
        assert session.execute(select(Campaign.id)).first() is None

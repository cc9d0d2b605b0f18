"""Push receivers: the token guards them, the raw body is committed before the answer, then parsed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from dispatcher import campaigns
from dispatcher.results import inbox
from dispatcher.simulator import SimulatorConfig
from dispatcher.store import OptOut, RawPull, Recipient, ReplyRow, ReportRow
from dispatcher.vendors.wire import CHINA_TZ
from dispatcher.web import push
from tests.helpers import sent_before
from tests.web.conftest import PUSH_TOKEN, Web, write_contacts
from workers.tasks import enqueue

FORM = {"content-type": "application/x-www-form-urlencoded"}


def raw_count(web: Web) -> int:
    with web.sessions() as session:
        return int(session.execute(select(func.count()).select_from(RawPull)).scalar_one())


def test_given_a_wrong_or_missing_token_when_pushing_then_403_and_nothing_stored(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    body = urlencode({"account": "demo", "GetReport": "123,13900000001,DELIVRD|"})
    yunxin, entinfo = web.accounts["yunxin"], web.accounts["entinfo"]
    for url in (
        f"/push/{yunxin}/reports",
        f"/push/{yunxin}/reports?token=",
        f"/push/{yunxin}/reports?token=wrong",
        f"/push/{yunxin}/replies?token={PUSH_TOKEN}x",
        f"/push/nosuchaccount/reports?token={PUSH_TOKEN}",
        f"/push/{entinfo}/reports?token={PUSH_TOKEN}",  # no push_token configured
    ):
        assert c.post(url, content=body, headers=FORM).status_code == 403, url
    assert raw_count(web) == 0


def test_given_the_right_token_when_a_form_report_is_pushed_then_stored_acknowledged_and_parsed(
    make_web: Callable[..., Web], monkeypatch: pytest.MonkeyPatch
) -> None:
    web = make_web()
    c = web.client()
    # (each push's processing runs on one connection: a burst of pushes must not take two each)
    connections: list[int | None] = []

    def process_pending(*args: Any, **kwargs: Any) -> Any:
        connections.append(kwargs.get("connections"))
        return inbox.process_pending(*args, **kwargs)

    monkeypatch.setattr(push, "process_pending", process_pending)
    body = urlencode({"account": "demo", "GetReport": "2314357620085030623,13900000001,DELIVRD|"})
    r = c.post(f"/push/{web.accounts['yunxin']}/reports?token={PUSH_TOKEN}", content=body, headers=FORM)
    assert r.status_code == 200 and r.text == "ok"
    with web.sessions() as session:
        raw = session.execute(select(RawPull)).scalar_one()
    assert (raw.account, raw.kind, raw.source, raw.body) == (web.accounts["yunxin"], "reports", "push", body)

    def parsed() -> bool:
        with web.sessions() as session:
            return session.execute(select(ReportRow.status)).scalars().all() == ["DELIVRD"]

    web.wait_for(parsed, 10)
    assert connections == [1]


def test_given_trigger_json_replies_when_pushed_then_reply_stored_and_opt_out_applied(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    sent_before(web.sessions, web.accounts["trigger"], "trigger", ["13900000009"])
    c = web.client()
    body = json.dumps(
        {
            "account": "demo",
            "type": 3,
            "list": [
                {"dest_phone": "13900000009", "show_num": "1069", "resp_content": "T", "receive_time": 1529466210680,
                 "customer_uuid": ""}
            ],
        }
    )  # fmt: skip
    r = c.post(
        f"/push/{web.accounts['trigger']}/replies?token={PUSH_TOKEN}",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 200

    def applied() -> bool:
        with web.sessions() as session:
            replies = session.execute(select(ReplyRow.text)).scalars().all()
            optouts = session.execute(select(OptOut.mobile)).scalars().all()
        return replies == ["T"] and optouts == ["13900000009"]

    web.wait_for(applied, 10)
    page = web.signed_in("sender").get("/replies").text
    assert "13900000009" in page


def test_given_the_simulator_in_push_mode_when_a_campaign_is_sent_then_pushed_reports_settle_recipients(
    make_web: Callable[..., Web],
) -> None:
    # Given a simulator that pushes (not queues) its reports to this app's receivers, per vendor account
    push = "{web}/push/{vendor}-{suffix}/{kind}?token=" + PUSH_TOKEN
    config = SimulatorConfig(report_delay=0.0, seed=11, deliver_ratio=0.8, push_url=push, push_interval=0.1)
    web = make_web(worker=True, sim_config=config)
    rows = [(str(13700000000 + i), f"客户{i}") for i in range(30)]
    path = write_contacts(web.tmp / "push.xlsx", rows)
    created = campaigns.create(
        web.sessions, web.settings, path, "{姓名}您好【测试】", web.accounts["trigger"], actor="t"
    )
    enqueue(campaigns.start(web.sessions, created.campaign_id, "t"), app=web.celery)

    # When the vendor's reports arrive by push
    def settled() -> bool:
        with web.sessions() as session:
            s = campaigns.status(session, created.campaign_id)
        return bool(s["delivered"] + s["undelivered"] == 30)

    web.wait_for(settled, 60)

    # Then every recipient carries the outcome the vendor chose, and nothing was pulled
    truth = {e["mobile"]: e["status"] for e in web.sim.ledger()["accepted"] if e["vendor"] == "trigger"}
    with web.sessions() as session:
        states = dict(session.execute(select(Recipient.mobile, Recipient.state)).all())
        sources = set(session.execute(select(RawPull.source)).scalars())
    assert {m: ("delivered" if s == "DELIVRD" else "undelivered") for m, s in truth.items()} == states
    assert "undelivered" in states.values() and sources == {"push"}


def _gbk_pushes(web: Web, mobile: str) -> list[tuple[str, str, bytes, str]]:
    """(account, what, body, content type): an opt-out "退订" of ``mobile`` pushed by gateways that
    write GBK: a form escaping GBK bytes (charset declared, or not), trigger's ``json_str`` form, and
    trigger's JSON as raw GBK bytes."""
    at = datetime.now(CHINA_TZ).strftime("%Y/%m/%d %H:%M:%S")
    listed = {"account": "demo", "GetMo": f"{mobile}|,|退订|,|{at}|;|"}
    reply = {"account": "demo", "type": 3, "list": [{"dest_phone": mobile, "resp_content": "退订"}]}
    form = "application/x-www-form-urlencoded"
    return [
        ("yunxin", "form, GBK declared", urlencode(listed, encoding="gbk").encode(), form + "; charset=GBK"),
        ("yunxin", "form, GBK undeclared", urlencode(listed, encoding="gbk").encode(), form),
        (
            "trigger",
            "json_str form, GBK declared",
            urlencode({"json_str": json.dumps(reply, ensure_ascii=False)}, encoding="gbk").encode(),
            form + ";charset=gbk",
        ),
        (
            "trigger",
            "JSON, GBK declared",
            json.dumps(reply, ensure_ascii=False).encode("gbk"),
            "application/json; charset=GBK",
        ),
    ]


@pytest.mark.parametrize("case", range(4))
def test_given_a_gbk_encoded_opt_out_pushed_over_http_then_it_opts_the_number_out(
    database_url: str, make_web: Callable[..., Web], case: int
) -> None:
    web = make_web(db_url=database_url)
    mobile = "13900000009"
    vendor, what, body, content_type = _gbk_pushes(web, mobile)[case]
    sent_before(web.sessions, web.accounts[vendor], vendor, [mobile])
    # When the gateway pushes the reply "退订" in GBK to the web app over HTTP
    r = web.client().post(
        f"/push/{web.accounts[vendor]}/replies?token={PUSH_TOKEN}",
        content=body,
        headers={"content-type": content_type},
    )
    assert r.status_code == 200, what

    # Then the reply reads "退订" and the number is opted out
    def applied() -> bool:
        with web.sessions() as session:
            replies = session.execute(select(ReplyRow.text)).scalars().all()
            optouts = session.execute(select(OptOut.mobile)).scalars().all()
        return replies == ["退订"] and optouts == [mobile]

    web.wait_for(applied, 10)

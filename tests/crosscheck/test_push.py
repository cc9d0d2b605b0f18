"""Push mode: the simulator's push bodies (``dispatcher.simulator.push.collect``, what it POSTs to a
receiver) read by the client's push parsers; reports and replies must match the ledger."""

from __future__ import annotations

import time
from datetime import datetime

from dispatcher.simulator import RunningSimulator
from dispatcher.simulator.push import Push, collect
from dispatcher.simulator.state import SimState
from dispatcher.vendors import trigger as tg
from dispatcher.vendors import webservice as ws
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import CHINA_TZ
from tests.crosscheck.conftest import SIGNED, TG, WS, YX, accepted, exchange

MOBILES = ["13900000001", "13900000002"]


def pushes(sim: RunningSimulator) -> list[Push]:
    def take(state: SimState) -> list[Push]:
        return collect(state, "http://receiver.invalid/{vendor}/{account}/{kind}", time.time())

    return sim.call(take)


def test_given_form_pushes_when_read_by_the_client_then_reports_and_replies_match(
    transport: Transport, sim: RunningSimulator
) -> None:
    assert exchange(transport, ws.build_send(WS, MOBILES[:1], SIGNED), ws.parse_send).ok
    assert exchange(transport, yx.build_send(YX, MOBILES, SIGNED), yx.parse_send).ok
    before = int(time.time())
    sim.add_reply("yunxin", "demo", "13900000001", "收到, 谢谢")
    after = time.time()
    reports, replies = {}, {}
    for push in pushes(sim):
        vendor = ws if push.url.startswith("http://receiver.invalid/webservice/") else yx
        if push.url.endswith("/reports"):
            account, got = vendor.parse_push_reports(push.body, push.content_type)
            reports[vendor.NAME] = (account, sorted((r.batch_id, r.mobile, r.status) for r in got))
        else:
            account, mo = vendor.parse_push_replies(push.body, push.content_type)
            replies[vendor.NAME] = (account, [(r.mobile, r.text) for r in mo])
            assert all(r.at is not None and before <= r.at.timestamp() <= after for r in mo)
    expected = {
        name: (
            "demo",
            sorted((e["batch_id"], e["mobile"], e["status"]) for e in accepted(sim) if e["vendor"] == name),
        )
        for name in ("webservice", "yunxin")
    }
    assert reports == expected
    assert replies == {"yunxin": ("demo", [("13900000001", "收到, 谢谢")])}


def test_given_trigger_json_pushes_when_read_by_the_client_then_time_batch_and_customer_uuid_match(
    transport: Transport, sim: RunningSimulator
) -> None:
    assert exchange(transport, tg.build_send(TG, MOBILES[:1], SIGNED, ref="4711"), tg.parse_send).ok  # type 1
    assert exchange(transport, tg.build_personalised(TG, [(MOBILES[1], SIGNED)], ref="12"), tg.parse_send).ok
    sim.add_reply("trigger", "demo", MOBILES[1], "好的")
    got_reports, got_replies = [], []
    for push in pushes(sim):
        assert push.content_type == "application/json"
        if push.url.endswith("/reports"):
            account, reports = tg.parse_push_reports(push.body, push.content_type)
            got_reports += [(account, r.batch_id, r.mobile, r.status, r.ref, r.at) for r in reports]
        else:
            account, replies = tg.parse_push_replies(push.body, push.content_type)
            got_replies += [(account, r.mobile, r.text, r.channel, r.ref) for r in replies]
    ledger = accepted(sim)
    # receive_time is epoch milliseconds: the client keeps them to the millisecond.
    expected = [
        (
            "demo",
            e["batch_id"],
            e["mobile"],
            e["status"],
            e["ref"],
            datetime.fromtimestamp(int(e["at"] * 1000) / 1000, CHINA_TZ),
        )
        for e in ledger
    ]
    assert sorted(got_reports) == sorted(expected)
    assert got_replies == [("demo", MOBILES[1], "好的", "106900000001", "12")]

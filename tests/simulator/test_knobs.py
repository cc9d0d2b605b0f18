"""The simulator's knobs: rate limit, balance, report delay and outcomes, pull limits, faults, push,
latency, ledger reset, the process runner and the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs

import httpx
import pytest

from dispatcher.simulator import SimulatorConfig, run_simulator, start_simulator_process
from dispatcher.simulator.state import FAILURE_STATUSES
from dispatcher.vendors.crypto import entinfo_password
from tests.simulator.conftest import SIGNED, base_config, unwrap

WS = "/Services/MsgSend.aspx/"
LOGIN = {"userCode": "demo", "userPass": "demo"}
SN = "SDK-DEMO-010-00001"


def ws_send(client: httpx.Client, mobile: str = "13912345678") -> httpx.Response:
    return client.post(WS + "SendMsg", data={**LOGIN, "DesNo": mobile, "Msg": SIGNED})


def test_given_rate_limit_5_when_8_requests_at_once_then_vendor_too_frequent_codes() -> None:
    with run_simulator(base_config(rate_limit=5)) as sim, httpx.Client(base_url=sim.base_url) as client:
        answers = [ws_send(client).text for _ in range(8)]
        assert answers.count("-16") == 3
        yunxin = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED}
        got = [unwrap(client.post("/api/MsgSend.asmx/SendMsg", data=yunxin).text) for _ in range(6)]
        assert got[-1] == "-23"  # yunxin's own code; accounts are limited independently
        ent = {"sn": SN, "pwd": entinfo_password(SN, "demo"), "content": SIGNED}
        got = [
            client.post("/mdsmssend.ashx", data={**ent, "mobile": f"1391234{i:04d}"}).text for i in range(6)
        ]
        assert got[-1] == "-8"
        trig = [
            unwrap(client.post("/winnerrxd/api/trigger/GetReportConnect", data=LOGIN).text) for _ in range(6)
        ]
        assert trig[-1] == "-16"
        time.sleep(1.05)  # the window slides on
        assert ws_send(client).text != "-16"


def test_given_balance_1_when_second_message_then_each_vendors_insufficient_code() -> None:
    with run_simulator(base_config(balance=1)) as sim, httpx.Client(base_url=sim.base_url) as client:
        assert ws_send(client).text.isdigit() and ws_send(client, "13912345679").text == "-7"
        trig = {**LOGIN, "Msg": SIGNED}
        assert (
            unwrap(
                client.post(
                    "/winnerrxd/api/trigger/SendBatchMsg", data={**trig, "DesNo": "13912345678,13912345679"}
                ).text
            )
            == "-7"
        )
        ent = {
            "sn": SN,
            "pwd": entinfo_password(SN, "demo"),
            "content": SIGNED,
            "mobile": "13912345678,13912345679",
        }
        assert client.post("/mdsmssend.ashx", data=ent).text == "-4"


def test_given_report_delay_when_pulled_early_then_nothing_until_due() -> None:
    with run_simulator(base_config(report_delay=0.4)) as sim, httpx.Client(base_url=sim.base_url) as client:
        batch = ws_send(client).text
        assert client.post(WS + "GetReport", data=LOGIN).text == ""
        time.sleep(0.5)
        assert client.post(WS + "GetReport", data=LOGIN).text == f"{batch},13912345678,DELIVRD|"


def test_given_deliver_ratio_0_then_every_outcome_is_a_failure_code_in_ledger_and_reports() -> None:
    with run_simulator(base_config(deliver_ratio=0.0)) as sim, httpx.Client(base_url=sim.base_url) as client:
        desno = ",".join(f"139{i:08d}" for i in range(20))
        client.post("/api/MsgSend.asmx/SendMsg", data={**LOGIN, "DesNo": desno, "Msg": SIGNED})
        statuses = [e["status"] for e in sim.ledger()["accepted"]]
        assert len(statuses) == 20 and set(statuses) <= set(FAILURE_STATUSES)
        report = unwrap(client.post("/api/MsgSend.asmx/GetReport", data=LOGIN).text)
        assert [r.split(",")[2] for r in report.split("|") if r] == statuses


def test_given_1200_reports_when_pulled_then_500_500_200_and_empty() -> None:
    with run_simulator(base_config()) as sim, httpx.Client(base_url=sim.base_url) as client:
        for start in (0, 500, 1000):
            desno = ",".join(f"139{i:08d}" for i in range(start, min(start + 500, 1200)))
            client.post("/api/MsgSend.asmx/SendMsg", data={**LOGIN, "DesNo": desno, "Msg": SIGNED})
        sizes = [
            unwrap(client.post("/api/MsgSend.asmx/GetReport2", data=LOGIN).text).count("|") for _ in range(4)
        ]
        assert sizes == [500, 500, 200, 0]


def test_given_fault_rate_1_then_500_reset_and_lost_answer_each_behave() -> None:
    with run_simulator(base_config(fault_rate=1.0)) as sim, httpx.Client(base_url=sim.base_url) as client:
        seen: dict[str, type[Exception] | int] = {}
        for i in range(30):
            try:
                seen.setdefault("status", ws_send(client, f"1391234{i:04d}").status_code)
            except httpx.TransportError as exc:
                seen.setdefault(type(exc).__name__, type(exc))
        ledger = sim.ledger()
        kinds = [f["kind"] for f in ledger["faults"]]
        assert set(kinds) == {"http500", "reset", "lost"}
        assert seen["status"] == 500
        assert "ReadError" in seen  # RST before any answer
        assert "RemoteProtocolError" in seen  # closed after the request: answer lost
        # Only the lost answers were accepted, and each is in the ledger.
        assert len(ledger["accepted"]) == kinds.count("lost")
        # Reports and other non-send methods are never faulted.
        assert client.post(WS + "GetReport", data=LOGIN).status_code == 200


def test_given_latency_when_requests_then_answers_wait() -> None:
    with run_simulator(base_config(latency_ms=150)) as sim, httpx.Client(base_url=sim.base_url) as client:
        started = time.perf_counter()
        ws_send(client)
        assert time.perf_counter() - started >= 0.14


def test_given_reset_when_posted_then_ledger_empty(client: httpx.Client) -> None:
    ws_send(client)
    assert len(client.get("/_sim/ledger").json()["accepted"]) == 1
    client.post("/_sim/reset")
    assert client.get("/_sim/ledger").json() == {"accepted": [], "rejected": [], "faults": []}


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        self.bodies.append((self.path, self.headers["content-type"], body))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    bodies: list[tuple[str, str, bytes]] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_given_push_url_then_reports_and_replies_are_posted_in_vendor_formats(
    receiver: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    url, bodies = receiver
    config = base_config(push_url=url + "/push/{vendor}/{account}/{kind}", push_interval=0.05)
    with run_simulator(config) as sim, httpx.Client(base_url=sim.base_url) as client:
        batch = ws_send(client).text
        trig = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED, "customerUuid": "c1"}
        sub_no = unwrap(client.post("/winnerrxd/api/trigger/SendMsg", data=trig).text)
        sim.add_reply("trigger", "demo", "13912345678", "TD")
        deadline = time.time() + 5
        while len(bodies) < 3 and time.time() < deadline:
            time.sleep(0.05)
        assert client.post(WS + "GetReport", data=LOGIN).text == ""  # pushed, not pulled
    by_path = {
        (path, json.loads(body)["type"] if "json" in ctype else 0): body for path, ctype, body in bodies
    }
    form = parse_qs(by_path[("/push/webservice/demo/reports", 0)].decode())
    assert form == {"account": ["demo"], "GetReport": [f"{batch},13912345678,DELIVRD|"]}
    report = json.loads(by_path[("/push/trigger/demo/reports", 1)])
    assert report["account"] == "demo"
    [item] = report["list"]
    assert (item["phone"], item["receive_status"], item["sub_no"], item["customer_uuid"]) == (
        "13912345678",
        "DELIVRD",
        sub_no,
        "c1",
    )
    assert isinstance(item["receive_time"], int) and item["receive_time"] > 1_500_000_000_000
    reply = json.loads(by_path[("/push/trigger/demo/replies", 3)])["list"][0]
    assert (reply["dest_phone"], reply["resp_content"], reply["customer_uuid"]) == ("13912345678", "TD", "c1")


def test_given_a_process_simulator_then_it_answers_and_keeps_a_ledger() -> None:
    with (
        start_simulator_process(SimulatorConfig(report_delay=0)) as sim,
        httpx.Client(base_url=sim.base_url) as c,
    ):
        assert ws_send(c).text.isdigit()
        assert [e["mobile"] for e in sim.ledger()["accepted"]] == ["13912345678"]
        sim.reset()
        assert sim.ledger()["accepted"] == []
    assert sim.process.poll() is not None


def test_given_dispatcher_simulate_then_it_prints_address_and_accounts_and_stops_on_interrupt() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from dispatcher.cli import app; app()",
            "simulate",
            "--port",
            "0",
            "--account",
            "yunxin:acme:s3cret",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines = [process.stdout.readline() for _ in range(13)]
    try:
        url = lines[0].rsplit(" ", 1)[1].strip()
        assert httpx.post(
            url + WS + "SendMsg", data={**LOGIN, "DesNo": "13912345678", "Msg": SIGNED}
        ).text.isdigit()
        text = "".join(lines)
        assert "SDK-DEMO-010-00001" in text and "acme" in text and "s3cret" not in text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0

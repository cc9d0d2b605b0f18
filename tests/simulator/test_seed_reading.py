"""The simulator's own reading of the vendors' documents: its crypto, its service paths, what a ``&`` does
inside an encrypted text, and the voice report record it pushes."""

from __future__ import annotations

import ast
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest

import dispatcher.simulator
from dispatcher.simulator import RunningSimulator, run_simulator
from dispatcher.simulator.crypto import decode_submit_info, encode_submit_info, entinfo_pwd
from tests.simulator.conftest import (
    SEED_PLAIN,
    SEED_SUBMIT_INFO,
    SEED_TRIGGER_SUBMIT_INFO,
    SIGNED,
    accepted,
    base_config,
    rejected_codes,
    unwrap,
)

LOGIN = {"userCode": "demo", "userPass": "demo"}
SEED_TRIGGER_PLAIN = "userPass=123&DesNo=18616300000&Msg=你的验证码是:2345【饿了么】&smsType=101&Channel=0"


def test_given_the_simulator_package_then_it_imports_nothing_of_the_client_library() -> None:
    package = Path(dispatcher.simulator.__file__).parent
    imported: set[str] = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    dispatcher_modules = {m for m in imported if m.startswith("dispatcher")}
    assert dispatcher_modules and all(m.startswith("dispatcher.simulator") for m in dispatcher_modules)


@pytest.mark.parametrize(
    ("plain", "cipher"),
    [(SEED_PLAIN, SEED_SUBMIT_INFO), (SEED_TRIGGER_PLAIN, SEED_TRIGGER_SUBMIT_INFO)],
    ids=["webservice-yunxin", "trigger"],
)
def test_given_the_seeds_known_answers_then_the_simulators_des_reads_and_writes_them(
    plain: str, cipher: str
) -> None:
    assert decode_submit_info(cipher, "123") == plain
    assert encode_submit_info(plain, "123") == cipher


def test_given_a_name_outside_gb2312_then_code_page_936_carries_it_and_a_wrong_key_does_not() -> None:
    # 喆, 镕, 珺, 昇: common in names, in code page 936 (what .NET calls "GB2312"), not in GB2312 proper.
    plain = "userPass=pw&DesNo=13912345678&Msg=喆镕珺昇您好【测试】&Channel=0"
    cipher = encode_submit_info(plain, "pw")
    assert decode_submit_info(cipher, "pw") == plain
    assert decode_submit_info(cipher, "other") != plain  # a wrong key never gives the text back
    assert decode_submit_info("XYZ", "pw") is None
    assert decode_submit_info(cipher[:-2], "pw") is None


def test_given_entinfo_credentials_then_the_simulators_pwd_is_upper_md5_of_sn_plus_password() -> None:
    # printf 'SDK-OFT-010-00001123456' | md5sum
    assert entinfo_pwd("SDK-OFT-010-00001", "123456") == "DECE051040E9A5EF9B5C2B930A80D853"


@pytest.mark.parametrize(
    ("path", "wrapped"),
    [
        ("/Services/MsgSend.aspx/SendMsg", False),
        ("/Services/MsgSend.asmx/SendMsg", True),
        ("/api/MsgSend.asmx/SendMsg", True),
        ("/api/MsgSend.aspx/SendMsg", False),
    ],
)
def test_given_either_suffix_of_a_seed_service_then_the_method_answers(
    client: httpx.Client, path: str, wrapped: bool
) -> None:
    data = {**LOGIN, "DesNo": "13912345678", "Msg": SIGNED, "Channel": "37"}
    answer = client.post(path, data=data)
    assert answer.status_code == 200
    value = unwrap(answer.text) if wrapped else answer.text
    assert value.isdigit() and len(value) == 19


@pytest.mark.parametrize(
    "path",
    [
        "/api/MsgSend.asmx/IndividualSm",  # the personalised page is /api/IndividualSm.aspx only
        "/api/MsgSend.aspx/IndividualSm",
        "/Services/MsgSend.asmx/GetKeyWords",  # a yunxin method on the webservice service
        "/Services/MsgSend.ashx/SendMsg",  # a service path no document has
        "/Services/Other.asmx/SendMsg",
        "/winnerrxd/api/trigger/GetBalance",  # trigger's is GetBalanceConnect
        "/webservice.asmx/GetReport",  # entinfo has no report method
    ],
)
def test_given_a_method_or_service_path_no_seed_has_then_404(client: httpx.Client, path: str) -> None:
    form = {**LOGIN, "account": "demo", "pwd": "demo", "channel": "37", "msg": f"13912345678|!|{SIGNED}"}
    assert client.post(path, data=form).status_code == 404


@pytest.mark.parametrize(
    ("path", "extra", "code"),
    [
        ("/Services/MsgSend.asmx/sendMsgByEncrypt", "&Channel=0", "-5"),
        ("/api/MsgSend.asmx/sendMsgByEncrypt", "&Channel=37", "-5"),
        ("/winnerrxd/api/trigger/sendMsgByEncrypt", "&smsType=101&Channel=0", "-5"),
    ],
    ids=["webservice", "yunxin", "trigger"],
)
def test_given_an_ampersand_in_an_encrypted_msg_then_the_text_is_cut_there_and_refused(
    client: httpx.Client, sim: RunningSimulator, path: str, extra: str, code: str
) -> None:
    # The plaintext is read as a query string: "Msg=满100&减20【测试】" leaves Msg = "满100", which has no
    # signature any more. A gateway never sees the whole text.
    plain = f"userPass=123&DesNo=13912345678&Msg=满100&减20【测试】{extra}"
    answer = client.post(path, data={"userCode": "seed", "submitInfo": encode_submit_info(plain, "123")})
    assert unwrap(answer.text) == code
    assert accepted(sim) == []
    assert rejected_codes(sim) == [int(code)]


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[bytes]

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["content-length"])))
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"bodies": bodies}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    server.shutdown()
    server.server_close()


def test_given_push_when_a_voice_code_is_reported_then_the_voice_record_is_pushed(
    receiver: tuple[str, list[bytes]],
) -> None:
    url, bodies = receiver
    config = base_config(push_url=url + "/push/{vendor}", push_interval=0.05)
    with run_simulator(config) as sim, httpx.Client(base_url=sim.base_url) as client:
        voice = {**LOGIN, "DesNo": "13912345678", "VoiceCode": "1234", "Channel": "999", "Amount": "1"}
        batch = client.post("/Services/MsgSend.asmx/SendVoiceCode", data=voice)
        deadline = time.monotonic() + 10
        while not bodies and time.monotonic() < deadline:
            time.sleep(0.02)
    [body] = bodies
    [records] = parse_qs(body.decode())["GetReport"]
    # WebService API v9.9.6: batch,mobile,talk seconds,ring seconds,hang-up type|
    fields = records.rstrip("|").split(",")
    assert fields[:2] == [unwrap(batch.text), "13912345678"]
    assert len(fields) == 5 and all(f.isdigit() for f in fields[2:])

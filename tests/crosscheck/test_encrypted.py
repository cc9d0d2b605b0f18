"""The encrypted methods (DES ``submitInfo``) of webservice, yunxin and trigger: the client's reading of
the documents against the simulator's own."""

from __future__ import annotations

from types import ModuleType

import pytest

from dispatcher.simulator import RunningSimulator
from dispatcher.vendors import trigger as tg
from dispatcher.vendors import webservice as ws
from dispatcher.vendors import yunxin as yx
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import AnswerKind, Credentials
from tests.crosscheck.conftest import TG, WS, YX, exchange, sent

VENDORS = [(ws, WS), (yx, YX), (tg, TG)]
IDS = ["webservice", "yunxin", "trigger"]


@pytest.mark.parametrize(("vendor", "creds"), VENDORS, ids=IDS)
@pytest.mark.parametrize("name", ["喆", "镕", "珺", "昇"])
def test_given_a_name_outside_gb2312_proper_when_sent_encrypted_then_the_gateway_gets_that_text(
    transport: Transport, sim: RunningSimulator, vendor: ModuleType, creds: Credentials, name: str
) -> None:
    # The documents' "GB2312" is .NET's code page 936 (GBK): these names go through the gateways.
    text = f"{name}先生您好，您的订单已发货【测试】"
    answer = exchange(
        transport, vendor.build_send(creds, ["13912345678"], text, encrypted=True), vendor.parse_send
    )
    assert answer.kind is AnswerKind.OK, answer
    assert sent(sim, answer.value) == [("13912345678", text)]

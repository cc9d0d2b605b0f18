"""Both readings of the documents against each other: the client library (``dispatcher.vendors``) builds
each request, its ``Transport`` sends it to the simulator (``dispatcher.simulator``), and the client's
parser reads the answer. Neither side imports the other; only the ledger is read to check outcomes.

One simulator per module (it starts in milliseconds), reset before every test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import pytest

from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.simulator.config import ENTINFO_DEMO_SN
from dispatcher.vendors.transport import Transport
from dispatcher.vendors.wire import CHINA_TZ, Credentials, Request

T = TypeVar("T")

SIGNED = "您的验证码是1234【测试】"
BLACKLISTED = "13800000666"
ACCOUNT_KEYWORD = "内部价"  # a forbidden word of the yunxin "kw" account only

# The default accounts of dispatcher/simulator/config.py, as the client knows them.
WS = Credentials("demo", "demo")
YX = Credentials("demo", "demo", channel="67")  # yunxin needs the account's channel number
TG = Credentials("demo", "demo")
EN = Credentials(ENTINFO_DEMO_SN, "demo")
# A trigger account whose gateway was confirmed to use yunxin's "|!|" and "|^|" (the default is "|~|", "|-|").
TG_BANG = Credentials("bang", "pw")
# Accounts with one billing segment left.
WS_POOR, YX_POOR, TG_POOR = (
    Credentials("poor", "pw"),
    Credentials("poor", "pw", "67"),
    Credentials("poor", "pw"),
)
EN_POOR = Credentials("SDK-POOR-010-00001", "pw")
YX_KW = Credentials("kw", "pw", channel="67")


def crosscheck_config(**overrides: Any) -> SimulatorConfig:
    config = SimulatorConfig(report_delay=0.0, seed=1, deliver_ratio=0.5, blacklist=(BLACKLISTED,))
    config = config.with_accounts(
        Account("trigger", "bang", "pw", pair_separator="|!|", message_separator="|^|"),
        Account("webservice", "poor", "pw", balance=1),
        Account("yunxin", "poor", "pw", balance=1),
        Account("trigger", "poor", "pw", balance=1),
        Account("entinfo", "SDK-POOR-010-00001", "pw", balance=1),
        Account("yunxin", "kw", "pw", keywords=(ACCOUNT_KEYWORD,), show_num="106900000777"),
    )
    return replace(config, **overrides)


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(crosscheck_config()) as sim:
        yield sim


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.reset()
    return simulator


@pytest.fixture(scope="module")
def module_transport(simulator: RunningSimulator) -> Iterator[Transport]:
    with Transport([simulator.base_url], timeout=10) as transport:
        yield transport


@pytest.fixture
def transport(sim: RunningSimulator, module_transport: Transport) -> Transport:
    return module_transport


def exchange(transport: Transport, request: Request, parse: Callable[[str], T]) -> T:
    """Send the client's request with the client's transport; read the answer with the client's parser."""
    return parse(transport.send(request).text)


def accepted(sim: RunningSimulator, batch_id: str | None = None) -> list[dict[str, Any]]:
    rows = sim.ledger()["accepted"]
    return [r for r in rows if batch_id is None or r["batch_id"] == batch_id]


def sent(sim: RunningSimulator, batch_id: str) -> list[tuple[str, str]]:
    """(mobile, content) of each message the simulator accepted under ``batch_id``."""
    return [(r["mobile"], r["content"]) for r in accepted(sim, batch_id)]


def china_second(epoch: float) -> datetime:
    """A ledger time as the gateways write it: China time, whole seconds."""
    return datetime.fromtimestamp(int(epoch), CHINA_TZ)

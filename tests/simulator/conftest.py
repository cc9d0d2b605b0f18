"""One simulator per module (starting one takes milliseconds), reset before every test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from dispatcher.simulator import Account, RunningSimulator, SimulatorConfig, run_simulator

# WebService API v9.9.6 / 云信 API v8.3: password 123, this plaintext, this submitInfo.
SEED_PLAIN = "userPass=123&DesNo=18616300000&Msg=你的验证码是:2345【饿了么】&Channel=67"
SEED_SUBMIT_INFO = (
    "9ECD998D9F60F7963E137DBC61734970FEE419418FBD2E1622286696AD70D909BF58BB270916"
    "073B0464030D4FC52D4AF06BF97B34D7CCB4CA87E2099218499E467074C1711B02A1EBD0A53"
    "28DE1DAB1"
)
# Trigger API v1.8 section 2.8: the trigger form, with smsType=101&Channel=0.
SEED_TRIGGER_SUBMIT_INFO = (
    "9ECD998D9F60F7963E137DBC61734970FEE419418FBD2E1622286696AD70D909BF58BB270916073B0464030"
    "D4FC52D4AF06BF97B34D7CCB4D06AD49E87576B30CF629652BD44258CDA49DB959914CE4F951879939D658"
    "6AE"
)
SIGNED = "您的验证码是1234【测试】"
_STRING = re.compile(
    r'^<\?xml version="1.0" encoding="utf-8"\?>\s*<string xmlns="http://tempuri.org/">(.*)</string>$', re.S
)


def base_config(**overrides: object) -> SimulatorConfig:
    config = SimulatorConfig(report_delay=0.0, seed=7, deliver_ratio=1.0, blacklist=("13800000666",))
    config = config.with_accounts(
        Account("webservice", "seed", "123"),
        Account("yunxin", "seed", "123"),
        Account("trigger", "seed", "123"),
        Account("trigger", "bang", "pw", pair_separator="|!|", message_separator="|^|"),
        Account("yunxin", "poor", "pw", balance=3),
    )
    from dataclasses import replace

    return replace(config, **overrides)  # type: ignore[arg-type]


def unwrap(text: str) -> str:
    """The value inside ``<string xmlns="http://tempuri.org/">``; fails if the wrapper is missing."""
    match = _STRING.match(text)
    assert match is not None, f"not an ASMX <string> answer: {text!r}"
    return match.group(1)


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(base_config()) as sim:
        yield sim


@pytest.fixture
def sim(simulator: RunningSimulator) -> RunningSimulator:
    simulator.reset()
    return simulator


@pytest.fixture
def client(sim: RunningSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as c:
        yield c


def accepted(sim: RunningSimulator) -> list[dict[str, object]]:
    return sim.ledger()["accepted"]


def rejected_codes(sim: RunningSimulator) -> list[object]:
    return [r["code"] for r in sim.ledger()["rejected"]]

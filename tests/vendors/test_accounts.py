"""Vendor-specific account settings: what a configuration may ask of each gateway, checked at load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dispatcher.config import Settings
from dispatcher.errors import ConfigError
from dispatcher.simulator import RunningSimulator, SimulatorConfig, run_simulator
from dispatcher.vendors import webservice, yunxin
from dispatcher.vendors.transport import for_account
from dispatcher.vendors.wire import Separators

SIGNED = "您的验证码是1234【测试】"


def load(tmp_path: Path, vendor: str, base_url: str = "http://gw.example", **fields: str) -> Settings:
    values = {"vendor": f'"{vendor}"', "base_url": f'"{base_url}"', "user": '"demo"', "password": '"demo"'}
    lines = [f"{key} = {value}" for key, value in (values | fields).items()]
    path = tmp_path / "dispatcher.toml"
    path.write_text("[accounts.acct]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return Settings.load({"DISPATCHER_CONFIG": str(path)}, cwd=tmp_path)


@pytest.fixture(scope="module")
def simulator() -> Iterator[RunningSimulator]:
    with run_simulator(SimulatorConfig(report_delay=0.0, seed=1)) as sim:
        yield sim


def test_given_an_encrypted_entinfo_account_when_loaded_then_a_configuration_error_names_it(
    tmp_path: Path,
) -> None:
    # The Entinfo SDK API (2017) has no encrypted method: every chunk would fail before sending.
    with pytest.raises(ConfigError, match=r"account 'acct'.*encrypted.*entinfo"):
        load(tmp_path, "entinfo", user='"SDK-DEMO-010-00001"', encrypted="true")
    assert load(tmp_path, "entinfo", encrypted="false").account("acct").encrypted is False


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_an_encrypted_account_whose_password_has_an_ampersand_when_loaded_then_a_configuration_error(
    tmp_path: Path, vendor: str
) -> None:
    # The encrypted plaintext is "userPass=<password>&DesNo=...": the gateway reads the password up to its
    # '&', and refuses every send, balance and pull of the account as a wrong password.
    with pytest.raises(ConfigError, match=r"account 'acct'.*encrypted.*password.*'&'") as info:
        load(tmp_path, vendor, password='"s3cr&t"', encrypted="true", channel='"37"')
    assert "s3cr" not in str(info.value)
    plain = load(tmp_path, vendor, password='"s3cr&t"', channel='"37"')  # the plain methods URL-encode it
    assert plain.account("acct").password == "s3cr&t"


@pytest.mark.parametrize("path", ['"MsgSend.aspx"', '"/Services/MsgSend.aspx?x=1"', '"/a b"', "3"])
def test_given_a_bad_service_path_when_loaded_then_a_configuration_error_names_the_field(
    tmp_path: Path, path: str
) -> None:
    with pytest.raises(ConfigError, match=r"account 'acct'.*service_path"):
        load(tmp_path, "webservice", service_path=path)


@pytest.mark.parametrize(
    ("vendor", "service_path", "wrapped"),
    [
        ("webservice", None, True),  # .asmx: the <string> answer
        ("webservice", "/Services/MsgSend.aspx", False),
        ("yunxin", None, True),
        ("yunxin", "/api/MsgSend.aspx", False),
    ],
)
def test_given_an_accounts_service_path_when_sending_then_requests_go_there(
    tmp_path: Path, simulator: RunningSimulator, vendor: str, service_path: str | None, wrapped: bool
) -> None:
    fields = {"channel": '"37"'} | ({"service_path": f'"{service_path}"'} if service_path else {})
    account = load(tmp_path, vendor, simulator.base_url, **fields).account("acct")
    module = {"webservice": webservice, "yunxin": yunxin}[vendor]
    request = module.build_send(account.credentials(), ["13912345678"], SIGNED)
    assert request.path.startswith(module.SERVICE_PATH + "/") and module.SERVICE_PATH.endswith(".asmx")
    with for_account(account) as transport:
        response = transport.send(request)
    expected_path = (service_path or module.SERVICE_PATH) + "/SendMsg"
    assert response.url_used == simulator.base_url + expected_path
    assert response.text.startswith("<?xml") is wrapped
    assert module.parse_send(response.text).ok


def test_given_no_separators_in_the_config_then_each_vendor_has_its_own_default_and_an_account_its_own(
    tmp_path: Path,
) -> None:
    # Trigger API v1.8 lost its separators; "|~|" and "|-|" are the reading (confirm with the vendor).
    assert load(tmp_path, "trigger").account("acct").separators() == Separators("|~|", "|-|")
    assert load(tmp_path, "yunxin").account("acct").separators() == Separators("|!|", "|^|")
    own = load(tmp_path, "trigger", pair_separator='"|!|"', message_separator='"|^|"').account("acct")
    assert own.separators() == Separators("|!|", "|^|")
    with pytest.raises(ConfigError, match="must differ"):
        load(tmp_path, "trigger", message_separator='"|~|"')

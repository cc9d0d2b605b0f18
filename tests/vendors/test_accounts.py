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
from dispatcher.vendors.wire import ErrorClass, Separators

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


def test_given_extra_codes_when_the_gateway_answers_one_then_the_accounts_class_and_meaning_apply(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    # A gateway of the family answering a code its document lacks (or meaning another thing by one):
    # the account's configuration extends or corrects the table, without a release.
    extra = '{ "-3" = ["retry_later", "网关临时拒绝", "refused for now"], "-99" = "bad_content" }'
    account = load(tmp_path, "webservice", simulator.base_url, password='"wrong"', extra_codes=extra).account(
        "acct"
    )
    request = webservice.build_send(account.credentials(), ["13912345678"], SIGNED)
    with for_account(account) as transport:
        answer = webservice.parse_send(transport.send(request).text)
    assert answer.code == -3 and webservice.classify(-3).error_class is ErrorClass.ACCOUNT
    module = account.vendor_module()
    assert (module.classify(-3).error_class, module.classify(-3).meaning) == (
        ErrorClass.RETRY_LATER,
        "网关临时拒绝",
    )
    assert module.classify(-99).error_class is ErrorClass.BAD_CONTENT
    assert module.classify(-16) == webservice.classify(-16)  # the rest of the table stays
    assert module.CODES[-99].error_class is ErrorClass.BAD_CONTENT and -99 not in webservice.CODES
    assert load(tmp_path, "webservice").account("acct").vendor_module() is webservice


@pytest.mark.parametrize(
    "extra",
    ['{ "30" = "bad_content" }', '{ "-30" = "whatever" }', '{ "-30" = 3 }', '"-30"', '{ "-30" = [] }'],
)
def test_given_bad_extra_codes_when_loaded_then_a_configuration_error_names_the_field(
    tmp_path: Path, extra: str
) -> None:
    with pytest.raises(ConfigError, match=r"account 'acct'.*extra_codes"):
        load(tmp_path, "yunxin", extra_codes=extra)


def test_given_no_max_in_flight_then_entinfo_sends_one_at_a_time_and_the_others_without_limit(
    tmp_path: Path,
) -> None:
    assert load(tmp_path, "entinfo").account("acct").max_in_flight == 1
    assert load(tmp_path, "yunxin").account("acct").max_in_flight is None
    assert load(tmp_path, "entinfo", max_in_flight="4").account("acct").max_in_flight == 4
    assert load(tmp_path, "entinfo", max_in_flight="0").account("acct").max_in_flight is None  # 0: no limit
    assert load(tmp_path, "trigger", max_in_flight="2").account("acct").max_in_flight == 2
    for bad in ("-1", '"1"', "1.5", "true"):
        with pytest.raises(ConfigError, match=r"account 'acct'.*max_in_flight"):
            load(tmp_path, "entinfo", max_in_flight=bad)


def test_given_content_encoding_when_loaded_then_entinfo_only_and_one_of_three(tmp_path: Path) -> None:
    assert load(tmp_path, "entinfo").account("acct").content_encoding == "plain"
    assert load(tmp_path, "entinfo", content_encoding='"gb2312"').account("acct").content_encoding == "gb2312"
    with pytest.raises(ConfigError, match=r"account 'acct'.*content_encoding.*plain, url, gb2312"):
        load(tmp_path, "entinfo", content_encoding='"base64"')
    with pytest.raises(ConfigError, match=r"account 'acct'.*content_encoding.*only entinfo"):
        load(tmp_path, "yunxin", content_encoding='"url"')

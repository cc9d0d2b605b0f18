"""The registry and the ``dispatcher vendors`` / ``dispatcher explain`` commands."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatcher.cli import app
from dispatcher.errors import UnknownVendorError
from dispatcher.vendors import NO_ENCRYPTION, VENDORS, registry
from dispatcher.vendors.wire import Credentials, Limits, Request

runner = CliRunner()


@pytest.mark.parametrize("name", VENDORS)
def test_given_each_vendor_when_getting_it_then_the_module_fulfils_the_contract(name: str) -> None:
    module = registry.get(name)
    assert name == module.NAME
    assert isinstance(module.LIMITS, Limits)
    assert module.CODES and all(code < 0 for code in module.CODES)
    assert module.METHODS and all(len(row) == 3 for row in module.METHODS)
    for function in ("build_send", "build_personalised", "parse_send", "build_balance", "parse_balance"):
        assert callable(getattr(module, function))


@pytest.mark.parametrize("name", VENDORS)
def test_given_each_vendor_then_its_balance_interval_is_at_least_what_its_too_frequent_code_states(
    name: str,
) -> None:
    # The balance gate spaces queries by the module's BALANCE_INTERVAL_S; its "too frequent" code says
    # how far apart the vendor wants them (webservice, trigger -16: 5 s; yunxin -23: 10 s).
    module = registry.get(name)
    stated = [
        float(m.group(1))
        for info in module.CODES.values()
        if info.error_class == "rate_limited"
        for m in [re.search(r"balance.*?(\d+) ?s\b", info.meaning_en)]
        if m
    ]
    interval = module.BALANCE_INTERVAL_S
    assert interval >= max(stated, default=5.0)
    assert interval == {"yunxin": 10.0}.get(name, 5.0)


@pytest.mark.parametrize("name", VENDORS)
def test_given_each_vendor_then_it_builds_an_encrypted_send_unless_it_is_one_of_no_encryption(
    name: str,
) -> None:
    # config refuses an encrypted account of a NO_ENCRYPTION vendor: the module must agree.
    def build() -> Request:
        creds = Credentials("u", "p", channel="37")
        return registry.get(name).build_send(creds, ["13900000000"], "hi", encrypted=True)

    if name in NO_ENCRYPTION:
        with pytest.raises(ValueError, match="no encrypted"):
            build()
    else:
        form = build().form
        assert "submitInfo" in form and "userPass" not in form  # the password travels only encrypted


@pytest.mark.parametrize(("name", "same", "personalised"), [("trigger", 50, 50), ("entinfo", 10_000, 1000)])
def test_given_my_vendors_then_limits_match_documented(name: str, same: int, personalised: int) -> None:
    limits = registry.get(name).LIMITS
    assert (limits.same_text_numbers, limits.personalised_messages, limits.reports_per_pull) == (
        same,
        personalised,
        500,
    )
    assert isinstance(registry.get(name).build_balance(Credentials("u", "p")), Request)


def test_given_an_unknown_vendor_when_getting_it_then_the_error_names_the_four() -> None:
    with pytest.raises(UnknownVendorError) as info:
        registry.get("aliyun")
    for name in VENDORS:
        assert name in str(info.value)


def test_given_the_same_code_at_two_vendors_when_explaining_then_the_meanings_differ() -> None:
    # -8 is flow control at Entinfo but "no channel / outside hours" at trigger.
    assert registry.explain("entinfo", "-8")["class"] == "rate_limited"
    assert registry.explain("trigger", "-8")["class"] == "retry_later"


def test_given_a_code_with_detail_when_explaining_then_detail_is_kept() -> None:
    assert registry.explain("trigger", "-24:促销") == {
        "vendor": "trigger",
        "code": -24,
        "class": "bad_content",
        "meaning": "短信包含用户敏感信息",
        "meaning_en": "text contains a word the account forbids",
        "detail": "促销",
    }
    assert registry.explain("entinfo", " 20 ")["code"] == -20  # the sign may be dropped
    with pytest.raises(ValueError):
        registry.explain("entinfo", "oops")


def test_given_explain_json_when_run_then_exactly_one_json_object() -> None:
    result = runner.invoke(app, ["explain", "trigger", "-16", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "vendor": "trigger",
        "code": -16,
        "class": "rate_limited",
        "meaning": "接口请求过于频繁，余额接口 5s 秒一次，其他接口适当调整",
        "meaning_en": "requests too frequent (balance: once per 5 s)",
    }


def test_given_explain_with_detail_and_unknown_code_when_run_then_class_unknown_and_detail() -> None:
    result = runner.invoke(app, ["explain", "entinfo", "-3:whatever", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["class"], data["code"], data["detail"]) == ("unknown", -3, "whatever")


def test_given_explain_without_json_when_run_then_a_readable_line() -> None:
    result = runner.invoke(app, ["explain", "entinfo", "-20"])
    assert result.exit_code == 0, result.output
    assert "duplicate" in result.stdout
    assert "相同手机号" in result.stdout


def test_given_entinfo_minus_18_when_explained_then_one_request_at_a_time_and_retried() -> None:
    # In the vendor's demos' tables, not its document: a second request while one is unanswered.
    result = runner.invoke(app, ["explain", "entinfo", "-18", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["class"], data["meaning"]) == ("retry_later", "上次提交没有等待返回不能继续提交")
    assert "one request at a time" in data["meaning_en"]


def test_given_an_unknown_vendor_when_explaining_then_non_zero_and_message_on_stderr() -> None:
    result = runner.invoke(app, ["explain", "aliyun", "-1", "--json"])
    assert result.exit_code != 0
    assert result.stdout == ""
    assert "unknown vendor 'aliyun'" in result.stderr
    assert "entinfo" in result.stderr


def test_given_the_vendors_command_when_run_then_every_vendor_and_my_methods_are_listed() -> None:
    result = runner.invoke(app, ["vendors"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for text in (*VENDORS, "SendIndividualMsg", "GetReport2Connect", "mdgxsend", "up to 10000"):
        assert text in result.stdout
    # Personalised separators: per account, and trigger's must be confirmed with the vendor.
    flat = " ".join(result.stdout.split())
    assert "pair_separator and message_separator" in flat
    assert "trigger |~| / |-|" in flat and "must be confirmed with the vendor" in flat


def test_given_a_real_shell_when_running_dispatcher_explain_then_json_on_stdout() -> None:
    exe = Path(sys.executable).with_name("dispatcher")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "dispatcher.cli"]
    done = subprocess.run(
        [*command, "explain", "entinfo", "-611:GBK", "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["vendor"], data["code"], data["class"], data["detail"]) == (
        "entinfo",
        -611,
        "bad_content",
        "GBK",
    )

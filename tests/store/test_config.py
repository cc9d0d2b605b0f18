"""Settings from a TOML file and the environment; accounts; secrets kept out of reprs and errors."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from dispatcher.config import Settings, format_window, redact_url, validate_window
from dispatcher.errors import ConfigError
from dispatcher.vendors.wire import Credentials, Separators

SECRET = "s3cr3t-Pa55"


def load(tmp_path: Path, toml: str, **env: str) -> Settings:
    path = tmp_path / "dispatcher.toml"
    path.write_text(toml, encoding="utf-8")
    return Settings.load({"DISPATCHER_CONFIG": str(path), **env}, cwd=tmp_path)


def account_toml(**fields: str) -> str:
    base = {"vendor": '"yunxin"', "base_url": '"http://yes.example/api/"', "user": '"u1"',
            "password": f'"{SECRET}"'}  # fmt: skip
    base.update(fields)
    return "[accounts.main]\n" + "".join(f"{k} = {v}\n" for k, v in base.items() if v != "")


def test_given_no_config_when_loaded_then_embedded_defaults_in_working_directory(tmp_path: Path) -> None:
    settings = Settings.load({}, cwd=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/dispatcher.sqlite3"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path}/dispatcher-broker.sqlite3"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.send_window == (480, 1260)
    assert settings.timezone == "Asia/Shanghai"
    assert settings.optout_words == ("T", "TD", "退订", "N", "取消")
    assert settings.approval_threshold is None and settings.secret_key is None
    assert dict(settings.accounts) == {}


def test_given_file_and_environment_when_loaded_then_environment_wins(tmp_path: Path) -> None:
    toml = 'database_url = "sqlite:///file.db"\nbroker_url = "redis://file/1"\nredis_url = "redis://file/2"\n'
    toml += 'secret_key = "from-file"\nsend_window = "09:00-20:30"\napproval_threshold = 10000\n'
    toml += 'timezone = "Asia/Urumqi"\noptout_words = ["TD", "退订"]\n'
    settings = load(tmp_path, toml, DISPATCHER_DATABASE_URL="postgresql+psycopg://db/x",
                    DISPATCHER_BROKER_URL="redis://env/1", DISPATCHER_REDIS_URL="redis://env/2",
                    DISPATCHER_SECRET_KEY="from-env")  # fmt: skip
    assert settings.database_url == "postgresql+psycopg://db/x"
    assert settings.broker_url == "redis://env/1"
    assert settings.redis_url == "redis://env/2"
    assert settings.secret_key == "from-env"
    assert (settings.send_window, settings.approval_threshold) == ((540, 1230), 10000)
    assert (settings.timezone, settings.optout_words) == ("Asia/Urumqi", ("TD", "退订"))


def test_given_sqlite_database_elsewhere_when_no_broker_then_broker_sits_next_to_it(tmp_path: Path) -> None:
    settings = Settings.load({"DISPATCHER_DATABASE_URL": "sqlite:////data/sms/store.db"}, cwd=tmp_path)
    assert settings.broker_url == "sqla+sqlite:////data/sms/dispatcher-broker.sqlite3"


def test_given_full_account_when_loaded_then_every_field_is_typed(tmp_path: Path) -> None:
    toml = account_toml(
        vendor='"entinfo"', backup_url='"http://sdk2.example:8061/"', channel="37", rate_limit="20",
        encrypted="false", push_token='"tok-Zq8sW1xP4mK7vB2n"', pair_separator='"|~|"', message_separator='"|-|"',
        price_per_segment="0.045", same_text_max="10000", keywords='["促销", "免费"]', push="true",
        service_path='"/webservice.asmx/"',
    )  # fmt: skip
    account = load(tmp_path, toml).account("main")
    assert (account.name, account.vendor, account.base_url) == ("main", "entinfo", "http://yes.example/api")
    assert account.backup_url == "http://sdk2.example:8061"
    assert account.base_urls == ["http://yes.example/api", "http://sdk2.example:8061"]  # tried in this order
    assert account.credentials() == Credentials(user="u1", password=SECRET, channel="37")
    assert account.separators() == Separators(pair="|~|", message="|-|")
    assert (account.rate_limit, account.encrypted, account.push) == (20.0, False, True)  # entinfo: never
    assert account.service_path == "/webservice.asmx"
    assert account.price_per_segment == Decimal("0.045")
    assert (account.same_text_max, account.keywords) == (10000, ("促销", "免费"))


def test_given_minimal_account_when_loaded_then_defaults(tmp_path: Path) -> None:
    account = load(tmp_path, account_toml()).account("main")
    assert account.separators() == Separators("|!|", "|^|")
    assert (account.channel, account.encrypted, account.push, account.same_text_max) == (
        "",
        False,
        False,
        500,
    )
    entinfo = load(tmp_path, account_toml(vendor='"entinfo"')).account("main")
    assert entinfo.same_text_max == 5000  # the vendor's advice, not its hard limit


def test_given_password_env_when_loaded_then_password_read_from_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, account_toml(password="", password_env='"MAIN_PW"'), MAIN_PW=SECRET)
    assert settings.account("main").credentials().password == SECRET


def test_given_password_env_unset_when_loaded_then_error_names_account_field_and_variable(
    tmp_path: Path,
) -> None:
    with pytest.raises(
        ConfigError, match=r"account 'main': field password_env: environment variable MAIN_PW"
    ):
        load(tmp_path, account_toml(password="", password_env='"MAIN_PW"'))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"vendor": '"smsbao"'}, r"account 'main': field vendor: unknown vendor 'smsbao'"),
        ({"user": ""}, r"account 'main': missing field user"),
        ({"base_url": ""}, r"account 'main': missing field base_url"),
        ({"password": ""}, r"account 'main': missing field password"),
        ({"password_env": '"X"'}, r"account 'main': give either field password or field password_env"),
        ({"passwrod": '"x"'}, r"account 'main': unknown field\(s\) passwrod"),
        ({"rate_limit": "0"}, r"account 'main': field rate_limit"),
        ({"same_text_max": "501"}, r"account 'main': field same_text_max must be an integer 1..500"),
        (
            {"vendor": '"entinfo"', "same_text_max": "10001"},
            r"field same_text_max must be an integer 1..10000",
        ),
        ({"backup_url": '"http://b"'}, r"account 'main': field backup_url: only entinfo"),
        ({"pair_separator": '"|^|"'}, r"pair_separator and message_separator must differ"),
        ({"pair_separator": '"|1|"'}, r"pair_separator and message_separator must hold no digit"),
        ({"price_per_segment": '"cheap"'}, r"field price_per_segment"),
        ({"keywords": '"促销"'}, r"field keywords"),
        ({"encrypted": '"yes"'}, r"field encrypted must be true or false"),
        # The push receivers' only credential, open to the internet and not throttled: no short ones.
        ({"push_token": '"123456"'}, r"account 'main': field push_token is too short \(6 characters"),
        # ... and none that is long but guessable: a run, one character, a repeated piece.
        ({"push_token": '"1234567890123456"'}, r"account 'main': field push_token is guessable"),
        ({"push_token": '"aaaaaaaaaaaaaaaa"'}, r"account 'main': field push_token is guessable"),
        ({"push_token": '"tok-tok-tok-tok-tok-tok-"'}, r"account 'main': field push_token is guessable"),
        (
            {"settle_unknown_after": '"soon"'},
            r"account 'main': field settle_unknown_after must be a positive",
        ),
        ({"settle_unknown_after": "0"}, r"field settle_unknown_after must be a positive duration"),
        # Pushed reports cannot show that none is on the way (issue 22)
        (
            {"settle_unknown_after": '"30m"', "push": "true"},
            r"account 'main': field settle_unknown_after: needs reports pulled",
        ),
        # entinfo's re-send relies on its duplicate refusal: only inside a window known to be longer
        (
            {"vendor": '"entinfo"', "settle_unknown_after": '"30m"'},
            r"field settle_unknown_after: entinfo's re-send is safe only inside its duplicate window",
        ),
        (
            {"vendor": '"entinfo"', "settle_unknown_after": '"30m"', "duplicate_window": '"10m"'},
            r"field settle_unknown_after: entinfo's re-send is safe only inside its duplicate window",
        ),
        ({"duplicate_window": '"1h"'}, r"field duplicate_window: only entinfo"),
    ],
)
def test_given_bad_account_when_loaded_then_config_error_without_the_password(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        load(tmp_path, account_toml(**fields))
    assert SECRET not in str(caught.value)


def test_given_loaded_settings_when_printed_then_no_secret_appears(tmp_path: Path) -> None:
    toml = account_toml(push_token=f'"{SECRET}-push-token"') + "\n"
    settings = load(tmp_path, 'secret_key = "k3y-S3CRET"\n' + toml,
                    DISPATCHER_DATABASE_URL=f"postgresql+psycopg://sms:{SECRET}@db/sms")  # fmt: skip
    for text in (repr(settings), str(settings), repr(settings.account("main")), repr(settings.accounts)):
        assert SECRET not in text and "k3y-S3CRET" not in text
    assert SECRET not in repr(settings.account("main").credentials())


def test_given_url_with_password_when_redacted_then_password_hidden() -> None:
    assert (
        redact_url(f"postgresql+psycopg://sms:{SECRET}@db:5432/sms")
        == "postgresql+psycopg://sms:***@db:5432/sms"
    )
    assert redact_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_given_a_password_holding_a_slash_when_redacted_or_fingerprinted_then_no_part_of_it_shows() -> None:
    # SQLAlchemy reads "app:s3cr/et+X=@db/x" as the password "s3cr/et+X=" (base64 passwords hold "/")
    from dispatcher.operations.fingerprint import without_password

    url = "postgresql+psycopg://app:s3cr/et+X=@db/x"
    assert redact_url(url) == "postgresql+psycopg://app:***@db/x"
    assert without_password(url) == "postgresql+psycopg://app@db/x"
    assert (
        redact_url("postgresql://u:p@ss/w@h/db?sslmode=require") == "postgresql://u:***@h/db?sslmode=require"
    )


@pytest.mark.parametrize(
    ("text", "window"),
    [("08:00-21:00", (480, 1260)), ("00:00-24:00", (0, 1440)), (" 9:05 - 17:30 ", (545, 1050))],
)
def test_given_window_text_when_validated_then_minutes(text: str, window: tuple[int, int]) -> None:
    assert validate_window(text) == window
    assert validate_window(format_window(window)) == window


@pytest.mark.parametrize(
    "text", ["8-21", "21:00-08:00", "08:00-08:00", "08:60-21:00", "24:00-24:30", "00:00-24:01"]
)
def test_given_bad_window_when_validated_then_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="send window"):
        validate_window(text)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('send_window = "21:00-08:00"', "send window"),
        ('timezone = "Mars/Olympus"', "unknown time zone"),
        ("approval_threshold = -1", "approval_threshold"),
        ("optout_words = 'TD'", "optout_words"),
        ('databse_url = "x"', r"unknown setting\(s\) in the config file: databse_url"),
        ("database_url = [", "not valid TOML"),
    ],
)
def test_given_bad_top_level_setting_when_loaded_then_config_error(
    tmp_path: Path, toml: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, toml)


def test_given_missing_config_file_when_loaded_then_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        Settings.load({"DISPATCHER_CONFIG": str(tmp_path / "nope.toml")}, cwd=tmp_path)


def test_given_unknown_account_name_when_looked_up_then_config_error_lists_known(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown account 'other' \(known: main\)"):
        load(tmp_path, account_toml()).account("other")


def test_given_broken_environment_when_module_imported_then_nothing_is_loaded(tmp_path: Path) -> None:
    # Settings are built when the program starts, never at import (a fresh interpreter proves it).
    env = {**os.environ, "DISPATCHER_CONFIG": str(tmp_path / "missing.toml")}
    code = "import dispatcher.config, dispatcher.store, dispatcher.cli"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def test_the_sample_config_that_compose_mounts_loads(tmp_path: Path) -> None:
    # docker-compose.yml mounts ./config at /config and points DISPATCHER_CONFIG at the file there
    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    app = compose["x-app"]
    assert "./config:/config:ro" in app["volumes"]
    assert compose["x-env"]["DISPATCHER_CONFIG"] == "/config/dispatcher.toml"
    settings = Settings.load({"DISPATCHER_CONFIG": str(root / "config" / "dispatcher.toml")}, cwd=tmp_path)
    account = settings.account("dry-run")
    assert (account.vendor, account.base_url, account.channel) == ("yunxin", "http://simulator:9000", "37")
    assert settings.send_window == (8 * 60, 21 * 60) and settings.approval_threshold == 50000


@pytest.mark.parametrize(
    ("given", "seconds"), [('"30m"', 1800.0), ('"2h"', 7200.0), ('"90s"', 90.0), ("45", 45.0)]
)
def test_given_settle_unknown_after_when_loaded_then_seconds(
    tmp_path: Path, given: str, seconds: float
) -> None:
    assert (
        load(tmp_path, account_toml(settle_unknown_after=given)).account("main").settle_unknown_after
        == seconds
    )
    assert load(tmp_path, account_toml()).account("main").settle_unknown_after is None

"""The settings of operations: the limiter's Redis follows a Redis broker; a worker or beat on a shared
store refuses one-machine defaults for its broker or limiter, naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher.config import DEFAULT_REDIS_URL, Settings
from dispatcher.errors import ConfigError
from dispatcher.operations.deployment import refusal

PG = "postgresql+psycopg://app:pw@db.internal/sms"


def load(tmp_path: Path, **env: str) -> Settings:
    return Settings.load(env={f"DISPATCHER_{k.upper()}": v for k, v in env.items()}, cwd=tmp_path)


def test_given_only_a_redis_broker_then_the_limiter_follows_it(tmp_path: Path) -> None:
    settings = load(tmp_path, broker_url="redis://shared:6379/0")
    assert settings.redis_url == "redis://shared:6379/0" and "redis_url" not in settings.defaulted
    assert load(tmp_path, broker_url="redis://a/0", redis_url="redis://b/1").redis_url == "redis://b/1"
    assert load(tmp_path).redis_url == DEFAULT_REDIS_URL
    assert load(tmp_path).defaulted == {"database_url", "broker_url", "redis_url"}


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"database_url": PG}, "broker_url (DISPATCHER_BROKER_URL) is not set"),
        ({"database_url": PG, "broker_url": "sqla+sqlite:///b.sqlite3", "redis_url": "redis://r/0"},
         "broker_url (DISPATCHER_BROKER_URL) is set to an embedded"),
        ({"database_url": PG, "broker_url": "sqla+postgresql://app:pw@db.internal/sms"},
         "redis_url (DISPATCHER_REDIS_URL) is not set"),
        ({"database_url": PG, "broker_url": "redis://r/0", "redis_url": "memory://"},
         "redis_url (DISPATCHER_REDIS_URL) is memory://"),
    ],
)  # fmt: skip
def test_given_a_shared_store_and_a_one_machine_default_then_a_worker_is_refused_naming_it(
    tmp_path: Path, env: dict[str, str], names: str
) -> None:
    reason = refusal(load(tmp_path, **env))
    assert reason is not None and names in reason and "--standalone" in reason and "pw" not in reason


@pytest.mark.parametrize(
    "env",
    [
        {},  # one machine: SQLite, embedded broker, loopback Redis
        {"database_url": PG, "broker_url": "redis://127.0.0.1:6379/0"},  # the limiter follows the broker
        {"database_url": PG, "broker_url": "redis://r/0", "redis_url": "redis://127.0.0.1/1"},  # said so
    ],
)
def test_given_settings_a_shared_deployment_accepts_then_nothing_is_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    assert refusal(load(tmp_path, **env)) is None


def test_given_operations_settings_then_they_are_checked(tmp_path: Path) -> None:
    settings = load(tmp_path, heartbeat_seconds="0.5", log_format="json", metrics_token="x" * 20)
    assert (settings.heartbeat_seconds, settings.log_format) == (0.5, "json")
    assert "x" * 20 not in repr(settings)
    for env, message in (
        ({"heartbeat_seconds": "0"}, "heartbeat_seconds"),
        ({"heartbeat_seconds": "soon"}, "heartbeat_seconds"),
        ({"log_format": "xml"}, "log_format"),
        ({"metrics_token": "short"}, "metrics_token"),
        ({"flower_url": "flower:5555"}, "flower_url"),
    ):
        with pytest.raises(ConfigError, match=message):
            load(tmp_path, **env)

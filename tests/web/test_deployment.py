"""The deployment refuses to run with a guessable cookie key or an open Flower: the compose file (parsed
and interpolated as compose does) and ``dispatcher web`` as a real process."""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

COMPOSE = Path(__file__).parents[2] / "docker-compose.yml"
REQUIRED = ("DISPATCHER_SECRET_KEY", "DISPATCHER_PUBLIC_URL", "FLOWER_BASIC_AUTH")
_VARIABLE = re.compile(r"\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


class ComposeRefuses(Exception):
    pass


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise ComposeRefuses(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _VARIABLE.sub(one, value)


def services() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return dict(data["services"])


def environments(env: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        name: {k: interpolate(str(v), env) for k, v in (service.get("environment") or {}).items()}
        for name, service in services().items()
    }


def test_given_the_compose_file_then_no_secret_has_a_default_and_each_is_required() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "change-me" not in text and "changeme" not in text
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            if key in REQUIRED:
                assert re.fullmatch(rf"\$\{{{key}:\?[^}}]+\}}", str(value)), (name, key, value)
    app_services = [
        n for n, s in services().items() if "DISPATCHER_DATABASE_URL" in (s.get("environment") or {})
    ]
    assert set(app_services) >= {"web", "worker", "beat", "flower"}
    for name in app_services:
        assert "DISPATCHER_SECRET_KEY" in services()[name]["environment"], name
    assert "FLOWER_BASIC_AUTH" in services()["flower"]["environment"]


@pytest.mark.parametrize("missing", REQUIRED)
def test_given_a_required_secret_unset_or_empty_when_compose_interpolates_then_it_refuses(
    missing: str,
) -> None:
    env = {
        "DISPATCHER_SECRET_KEY": secrets.token_urlsafe(32),
        "DISPATCHER_PUBLIC_URL": "https://sms.example.com",
        "FLOWER_BASIC_AUTH": "ops:" + secrets.token_urlsafe(16),
    }
    resolved = environments(env)
    assert resolved["web"]["DISPATCHER_SECRET_KEY"] == env["DISPATCHER_SECRET_KEY"]
    assert resolved["flower"]["FLOWER_BASIC_AUTH"] == env["FLOWER_BASIC_AUTH"]
    for value in (None, ""):
        broken = {k: v for k, v in env.items() if k != missing}
        if value is not None:
            broken[missing] = value
        with pytest.raises(ComposeRefuses, match=missing):
            environments(broken)


def test_given_the_compose_file_then_flower_the_plain_http_web_port_and_the_simulator_are_only_on_loopback() -> (
    None
):
    # The simulator's /_sim/ledger serves every number and text a dry run sent to it, to anyone.
    for name in ("flower", "web", "simulator"):
        ports = services()[name].get("ports", [])
        assert ports and all(str(port).startswith("127.0.0.1:") for port in ports), (name, ports)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _web(tmp_path: Path, key: str, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env.update(
        DISPATCHER_SECRET_KEY=key,
        DISPATCHER_DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        DISPATCHER_BROKER_URL="redis://127.0.0.1:6379/0",
        DISPATCHER_REDIS_URL="redis://127.0.0.1:6379/0",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "dispatcher", "web", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # real processes, long on two cores: CI runs it (-m slow)
@pytest.mark.parametrize(
    "key",
    [
        "change-me",
        "secret",
        "x" * 31,
        "change-me" * 4,
        "changeme-secret-key-please-change",
        "a" * 64,
        "12345678901234567890123456789012",
        "qwerty12qwerty12qwerty12qwerty12",
    ],
    ids=[
        "change-me",
        "secret",
        "31-bytes",
        "repeated-placeholder",
        "placeholder-words",
        "one-character",
        "a-run",
        "a-repeated-piece",
    ],
)
def test_given_a_weak_key_when_starting_dispatcher_web_then_it_refuses_naming_the_variable(
    tmp_path: Path, key: str
) -> None:
    proc = _web(tmp_path, key, _free_port())
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 2, err
    assert err.startswith("error: DISPATCHER_SECRET_KEY") and "random value" in err, err
    assert len(key) < 20 or key not in err  # the message never repeats the key


def test_given_a_random_key_when_starting_dispatcher_web_then_it_serves(tmp_path: Path) -> None:
    port = _free_port()
    proc = _web(tmp_path, secrets.token_urlsafe(32), port)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, proc.communicate()[1]
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "dispatcher web did not answer"
                time.sleep(0.2)
        assert r.status_code == 200 and "content-security-policy" in r.headers
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_given_the_compose_file_then_the_web_app_believes_the_proxys_x_forwarded_for_and_nobody_elses() -> (
    None
):
    # Compose publishes the app on 127.0.0.1 for a TLS proxy on the host: every connection then reaches
    # the container from its network's gateway. Unless the app believes the X-Forwarded-For the proxy
    # sends from there, all clients are one address to sign-in throttling, and five wrong passwords by
    # anyone on the internet block everyone's sign-in (for up to an hour, again and again).
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    env = {
        "DISPATCHER_SECRET_KEY": secrets.token_urlsafe(32),
        "DISPATCHER_PUBLIC_URL": "https://sms.example.com",
        "FLOWER_BASIC_AUTH": "ops:" + secrets.token_urlsafe(16),
    }
    # Only the gateway, the proxy's one address: not the network, whose other containers (a worker,
    # Flower) could otherwise pick any client address for themselves.
    for chosen in ({}, {"DISPATCHER_SUBNET": "10.123.4.0/24", "DISPATCHER_GATEWAY": "10.123.4.1"}):
        trusted = environments({**env, **chosen})["web"].get("FORWARDED_ALLOW_IPS", "")
        assert trusted and "*" not in trusted, trusted
        (pool,) = data["networks"]["default"]["ipam"]["config"]
        subnet = ipaddress.ip_network(interpolate(pool["subnet"], {**env, **chosen}))
        gateway = ipaddress.ip_address(interpolate(pool["gateway"], {**env, **chosen}))
        assert subnet.is_private and gateway in subnet
        assert ipaddress.ip_address(trusted) == gateway  # one address, not a network
        if chosen:
            assert str(subnet) == chosen["DISPATCHER_SUBNET"] and str(gateway) == chosen["DISPATCHER_GATEWAY"]
    assert "forwarded-allow-ips" not in " ".join(services()["web"]["command"])  # the variable decides

"""The shipped processes under test: what the Procfile and docker-compose.yml run, started as they are.

- :func:`procfile`, :func:`compose_commands`, :func:`dispatcher_commands` read the shipped files.
- :class:`Processes` starts command lines as process groups of their own (so a kill reaches a worker's
  pool children too), sends each one's output to a log file, stops or kills them, and shows every
  log's tail when a wait fails or a process dies that should not have.
- :class:`Redis` is a ``redis-server`` of the test's own on a free port (the shared one must never
  restart); :class:`Simulator` is ``dispatcher simulate`` as a process, with its ledger.

Waits poll a condition with generous timeouts: the machine is small and shared.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from redis import Redis as RedisClient
from redis.exceptions import RedisError

REPO = Path(__file__).resolve().parents[2]
PROCFILE = REPO / "Procfile"
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "Dockerfile"

# What the harness starts for the compose services that are not Procfile processes: the compose
# command itself, with only the port (and the test's knobs) added. tests/processes/test_shipped.py
# checks that docker-compose.yml still says this.
REDIS_COMMAND = ["redis-server", "--appendonly", "yes"]
SIMULATOR_COMMAND = ["dispatcher", "simulate", "--host", "0.0.0.0", "--port", "{port}"]

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


# ---- the shipped files --------------------------------------------------------------------------


def procfile(path: Path = PROCFILE) -> dict[str, str]:
    """``name: command`` lines of a Procfile."""
    processes: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def compose_commands(path: Path = COMPOSE) -> dict[str, list[str]]:
    """Each service's ``command:`` of a compose file, as an argument list."""
    services = yaml.safe_load(path.read_text(encoding="utf-8"))["services"]
    commands = {}
    for name, service in services.items():
        command = service.get("command")
        if command is not None:
            commands[name] = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
    return commands


def dockerfile_cmd(path: Path = DOCKERFILE) -> list[str]:
    """The image's default ``CMD`` (exec form)."""
    import json

    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("CMD ")]
    assert len(lines) == 1, f"{path}: expected one CMD line"
    command: list[str] = json.loads(lines[0][4:])
    return command


def dispatcher_commands(argv: Sequence[str]) -> list[str]:
    """The commands an argument list runs, one string each: ``sh -c "a && b"`` gives ``a`` and ``b``.
    Arguments are re-quoted with :func:`shlex.join`, so equal commands give equal strings."""
    if len(argv) == 3 and argv[0] == "sh" and argv[1] == "-c":
        return [shlex.join(shlex.split(part)) for part in re.split(r"&&|;", argv[2]) if part.strip()]
    return [shlex.join(argv)]


# ---- processes ------------------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path
    expected_alive: bool = True  # False once the test stops or kills it, or for one-shot commands

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""


@dataclass
class Processes:
    """Process groups started by one test, with their logs; :meth:`close` ends whatever is left.

    Every process runs in ``cwd``, an empty directory of its own (a test can check that nothing
    wrote there, as a read-only working directory would require); logs go to ``tmp/logs``."""

    tmp: Path
    env: dict[str, str]
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cwd.mkdir(exist_ok=True)
        (self.tmp / "logs").mkdir(exist_ok=True)

    @property
    def cwd(self) -> Path:
        return self.tmp / "cwd"

    def start(self, name: str, argv: Sequence[str], *, extra_env: Mapping[str, str] | None = None) -> Proc:
        log = self.tmp / "logs" / f"{name}-{sum(p.name == name for p in self.procs)}.log"
        with log.open("wb") as handle:
            popen = subprocess.Popen(
                list(argv),
                env={**self.env, **(extra_env or {})},
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own: signals reach a pool's children too
            )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def shell(self, name: str, line: str, *, extra_env: Mapping[str, str] | None = None) -> Proc:
        """A Procfile line, exactly as a process manager runs it."""
        return self.start(name, ["sh", "-c", line], extra_env=extra_env)

    def run(self, *args: str, input: str | None = None, timeout: float = 240) -> str:
        """A one-shot ``dispatcher`` command; its output, or a failure showing it."""
        done = subprocess.run(
            [sys.executable, "-m", "dispatcher", *args],
            env=self.env,
            cwd=self.cwd,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert done.returncode == 0, f"dispatcher {shlex.join(args)} failed:\n{done.stdout}{done.stderr}"
        return done.stdout

    def kill(self, proc: Proc, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the whole group and reap its leader."""
        proc.expected_alive = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.popen.wait(timeout=60)

    def stop(self, proc: Proc, timeout: float = 30) -> bool:
        """SIGTERM the group (a warm shutdown, as a process manager does), SIGKILL what is left after
        ``timeout``. True if every process of the group ended on the SIGTERM."""
        proc.expected_alive = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        graceful = not group_members(proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait(timeout=60)
        return graceful

    def close(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, timeout=20)

    def logs(self, lines: int = 40) -> str:
        parts = []
        for proc in self.procs:
            tail = "\n".join(proc.output().splitlines()[-lines:])
            state = "running" if proc.alive() else f"exited {proc.popen.returncode}"
            parts.append(f"----- {proc.log.name} ({state}) -----\n{tail}")
        return "\n".join(parts)

    def check_alive(self) -> None:
        dead = [p for p in self.procs if p.expected_alive and not p.alive()]
        if dead:
            names = ", ".join(f"{p.name} (exit {p.popen.returncode})" for p in dead)
            raise AssertionError(f"process(es) died: {names}\n{self.logs()}")

    def wait_for(
        self, what: str, predicate: Callable[[], T | None], timeout: float, interval: float = 0.25
    ) -> T:
        """Poll ``predicate`` until it returns something truthy (returned); fail with every log's tail
        on timeout, or at once if a process that should be running has died."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")
            time.sleep(interval)

    def wait_log(self, proc: Proc, text: str, timeout: float = 120) -> None:
        self.wait_for(f"{text!r} in {proc.log.name}", lambda: text in proc.output(), timeout)


def group_members(pgid: int) -> list[int]:
    """Live processes (not zombies) of a process group, from /proc: ``sh -c`` does not exec its
    command, so when the shell has gone its children may still be shutting down."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        state, group = fields[0], int(fields[2])
        if group == pgid and state not in ("Z", "X"):
            members.append(int(stat.parent.name))
    return members


def environment(tmp: Path, settings: Mapping[str, str]) -> dict[str, str]:
    """The processes' environment: this one without any DISPATCHER_* of the caller, plus ``settings``;
    this interpreter's bin directory first on PATH (a Procfile line names ``dispatcher``), temporary
    files (the beat's state on a non-SQLite store) under ``tmp``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPATCHER_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["TMPDIR"] = str(tmp)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(settings)
    return env


# ---- Redis and the simulator ------------------------------------------------------------------------


@dataclass
class Redis:
    """docker-compose's Redis command on a free port of this test, in its directory; ``extra`` options
    come last (later options win)."""

    processes: Processes
    extra: Sequence[str] = ()
    port: int = field(default_factory=free_port)
    proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        data = self.processes.tmp / "redis"
        data.mkdir(exist_ok=True)
        argv = [*REDIS_COMMAND, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(data)]
        self.proc = self.processes.start("redis", [*argv, *self.extra])
        client: RedisClient[Any] = RedisClient(port=self.port)
        try:
            self.processes.wait_for("redis to answer", lambda: _pings(client), timeout=30, interval=0.05)
        finally:
            client.close()

    def restart(self, down_for: float = 1.0) -> None:
        """Killed with SIGKILL, down for a moment (clients see errors), started again."""
        assert self.proc is not None
        self.processes.kill(self.proc)
        time.sleep(down_for)
        self.start()

    def client(self) -> RedisClient[Any]:
        return RedisClient(port=self.port)


def _pings(client: RedisClient[Any]) -> bool:
    try:
        return bool(client.ping())
    except RedisError:
        return False


@dataclass
class Simulator:
    """``dispatcher simulate`` (docker-compose's command with a free port) and the test's knobs."""

    processes: Processes
    knobs: Sequence[str] = ()
    port: int = field(default_factory=free_port)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Proc:
        argv = [a.replace("{port}", str(self.port)) for a in SIMULATOR_COMMAND]
        proc = self.processes.start("simulator", [*argv, *self.knobs])
        self.processes.wait_for("the simulator to answer", self._answers, timeout=60)
        return proc

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}/_sim/accounts", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def ledger(self) -> dict[str, list[dict[str, Any]]]:
        response = httpx.get(f"{self.base_url}/_sim/ledger", timeout=30)
        response.raise_for_status()
        ledger: dict[str, list[dict[str, Any]]] = response.json()
        return ledger

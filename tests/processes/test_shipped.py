"""Every command the shipped files run is one that the process tests start.

The Procfile's lines are started as written by ``test_procfile.py`` (and ``test_chaos.py``); the
compose services run the same commands (their ``sh -c "dispatcher db upgrade && ..."`` count by
their dispatcher commands, as does the image's default CMD); Redis and the simulator are started
from the harness's copies of their compose commands (only the port and test knobs added).
"""

from __future__ import annotations

import re
import shlex

from tests.processes.harness import (
    REDIS_COMMAND,
    SIMULATOR_COMMAND,
    compose_commands,
    dispatcher_commands,
    dockerfile_cmd,
    procfile,
)

# Flower is a monitoring UI: installed only in the Docker image (not a dependency of the package,
# so not installed here), it reads the broker and sends nothing; no exactly-once promise rests on it.
NOT_STARTED = {"flower"}


def commands_started() -> set[str]:
    """What the process tests start: the Procfile's commands (``${PORT:-8000}`` as the shell expands
    it without PORT), and the harness's Redis and simulator commands (with compose's port)."""
    started = set()
    for line in procfile().values():
        expanded = re.sub(r"\$\{PORT:-(\d+)\}", r"\1", line)
        started.update(dispatcher_commands(["sh", "-c", expanded]))
    started.add(shlex.join(REDIS_COMMAND))
    started.add(shlex.join(a.replace("{port}", "9000") for a in SIMULATOR_COMMAND))
    return started


def test_the_procfile_names_the_three_processes_and_only_dispatcher_commands() -> None:
    lines = procfile()
    assert sorted(lines) == ["beat", "web", "worker"]
    for line in lines.values():
        assert all(c.startswith("dispatcher ") for c in dispatcher_commands(["sh", "-c", line])), line


def test_every_compose_command_is_one_the_process_tests_start() -> None:
    commands = compose_commands()
    assert set(commands) >= NOT_STARTED
    untested = {
        service: command
        for service, argv in commands.items()
        if service not in NOT_STARTED
        for command in dispatcher_commands(argv)
        if command not in commands_started()
    }
    assert untested == {}
    # The compose processes are the Procfile's: web, worker and beat all run what the Procfile runs.
    for service in ("web", "worker", "beat"):
        assert service in commands
        assert set(dispatcher_commands(commands[service])) <= commands_started()


def test_the_images_default_command_is_one_the_process_tests_start() -> None:
    assert set(dispatcher_commands(dockerfile_cmd())) <= commands_started()


def test_given_a_shell_line_then_its_commands_are_split_and_normalised() -> None:
    assert dispatcher_commands(["sh", "-c", "dispatcher db upgrade &&  dispatcher web --port 1"]) == [
        "dispatcher db upgrade",
        "dispatcher web --port 1",
    ]
    assert dispatcher_commands(["celery", "-A", "workers", "flower"]) == ["celery -A workers flower"]

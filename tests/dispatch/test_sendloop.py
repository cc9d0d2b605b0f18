"""The process's sending loop (``dispatcher.sendloop``): a loop whose thread died neither hangs the
task waiting on it nor takes the next task's chunks."""

from __future__ import annotations

import asyncio
import time

import pytest

from dispatcher import sendloop
from dispatcher.sendloop import SendLoop


async def _answer() -> int:
    await asyncio.sleep(0.05)
    return 1


async def _escape() -> int:
    # A BaseException that no ``except Exception`` catches ends the loop's thread (asyncio re-raises it).
    raise SystemExit(3)


def test_given_the_loop_thread_dies_mid_round_then_the_wait_ends_with_an_error_not_a_hang() -> None:
    loop = SendLoop()
    future = loop.submit([_answer(), _escape()])
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="sending loop"):
        loop.wait(future)
    assert time.monotonic() - started < 5.0
    assert not loop.alive


def test_given_the_process_loop_died_then_the_next_round_gets_a_new_one() -> None:
    dead = sendloop.default()
    with pytest.raises(RuntimeError):
        dead.wait(dead.submit([_escape()]))
    fresh = sendloop.default()
    assert fresh is not dead and fresh.alive
    assert fresh.wait(fresh.submit([_answer(), _answer()])) == [1, 1]

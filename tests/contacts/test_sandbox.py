"""The sandbox that reads uploads: a child per call with a memory limit, a time limit and few slots."""

from __future__ import annotations

import threading
import time

import pytest

from dispatcher.contacts.sandbox import Busy, Sandbox
from dispatcher.errors import InputError, SpreadsheetError, TextEncodingError


def test_given_a_call_that_allocates_past_the_limit_then_it_fails_in_the_child_with_the_files_name() -> None:
    sandbox = Sandbox(memory_mb=512)
    with pytest.raises(SpreadsheetError, match=r"^big.xlsx: reading the file was stopped: .* 512 MB allowed"):
        sandbox.run("big.xlsx", bytearray, 2 << 30)
    assert sandbox.run("small.xlsx", len, b"abc") == 3  # and the next call is served
    assert sandbox.peaks_kb[-1] < 512 * 1024


def test_given_a_dispatcher_error_in_the_child_then_the_same_type_and_message_arrive() -> None:
    sandbox = Sandbox(memory_mb=512)
    with pytest.raises(TextEncodingError) as caught:  # its constructor takes other arguments
        sandbox.run("list.xlsx", _raise_encoding_error)
    assert str(caught.value) == str(TextEncodingError("😀"))
    with pytest.raises(InputError, match=r"^no such sheet$"):
        sandbox.run("list.xlsx", _raise, InputError("no such sheet"))


def _raise(exc: Exception) -> None:
    raise exc


def _raise_encoding_error() -> None:
    raise TextEncodingError("😀")


def test_given_a_call_that_runs_too_long_then_it_is_stopped() -> None:
    sandbox = Sandbox(memory_mb=512, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(SpreadsheetError, match="took longer than 1 s"):
        sandbox.run("slow.xlsx", time.sleep, 60)
    assert time.monotonic() - started < 30


def test_given_every_slot_busy_when_another_call_comes_then_it_is_told_to_come_back() -> None:
    sandbox = Sandbox(memory_mb=512, workers=1, busy_wait_s=0.05)
    holder = threading.Thread(target=sandbox.run, args=("first.xlsx", time.sleep, 5))
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while True:  # until the holder has the only slot
            try:
                sandbox.run("second.xlsx", time.sleep, 0)
            except Busy as exc:
                assert str(exc).startswith("second.xlsx: the server is reading other files")
                break
            assert time.monotonic() < deadline
    finally:
        holder.join()


def test_given_an_answer_that_is_not_json_then_it_is_refused_not_unpickled() -> None:
    # The child reads hostile files: only JSON comes back from it, never a pickle to run.
    sandbox = Sandbox(memory_mb=512)
    with pytest.raises(SpreadsheetError, match=r"^odd.xlsx: the file could not be read \(cannot return"):
        sandbox.run("odd.xlsx", set, [1, 2])
    assert sandbox.run("fine.xlsx", dict, [("a", 1)]) == {"a": 1}

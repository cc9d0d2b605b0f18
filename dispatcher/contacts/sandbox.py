"""Run a reader in a child process with a memory limit, so no uploaded file can take the web app down.

The guard (:mod:`dispatcher.contacts.guard`) refuses the crafted workbooks it knows; this is the
backstop for the rest (a format it does not scan, a reader bug): calamine aborts the whole process when
an allocation fails, which must never be the web process. Each call gets a fresh child, forked from a
forkserver that has the readers imported (no threads, nothing of the web process inherited), with
``RLIMIT_AS`` set; at most ``workers`` children run at once and each is killed after ``timeout_s``.
The child answers in JSON, never pickle: a child that a crafted file managed to subvert could otherwise
hand the web process code to run. (It is a fence against exhaustion and crashes, not a jail.)

    sandbox = Sandbox(memory_mb=4096)
    result = sandbox.run("list.xlsx", read_through, path, sheet, limits)   # its JSON-able return value
    # a DispatcherError raised in the child is raised here (its class by name, from dispatcher.errors);
    # a child that dies or overruns gives SpreadsheetError naming the file
"""

from __future__ import annotations

import collections
import contextvars
import json
import logging
import multiprocessing
import os
import resource
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from dispatcher import errors
from dispatcher.contacts.reader import read_through
from dispatcher.errors import DispatcherError, SpreadsheetError

if TYPE_CHECKING:
    from dispatcher.config import Settings

T = TypeVar("T")
UNSCANNED_SUFFIXES = frozenset({".xls", ".et", ".xlsb", ".ods"})  # sheets the guard judges least surely
log = logging.getLogger(__name__)
TIMEOUT_S = 300.0
BUSY_WAIT_S = 30.0  # a request waits this long for a free slot, then gets 503 (never ties up the app)


# (monotonic end, its length in seconds) of the readings of the request at hand: see Sandbox.within.
_BUDGET: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar("budget", default=None)


class Busy(DispatcherError):
    """Every slot is reading another file (503): try again in a moment."""


_CONTEXT = multiprocessing.get_context("forkserver")
# The readers, imported once in the forkserver rather than in every child.
_CONTEXT.set_forkserver_preload(["dispatcher.contacts"])


def preload(*modules: str) -> None:
    """Modules the forkserver imports once for every child (the caller's reading functions); only
    before the first child starts."""
    _CONTEXT.set_forkserver_preload(["dispatcher.contacts", *modules])


def _child(conn: Connection, memory_bytes: int, func: Callable[..., Any], args: tuple[Any, ...]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # A dying reader writes pages of Rust backtrace: the parent reports the failure in one line.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 2)
    answer: dict[str, Any]
    try:
        answer = {"status": "ok", "value": func(*args)}
    except DispatcherError as exc:
        answer = {
            "status": "error",
            "type": type(exc).__name__,
            "message": str(exc),
            "msgid": exc.msgid,
            "params": exc.params,
        }
    except MemoryError:
        answer = {"status": "memory"}
    except Exception as exc:  # a reader bug: reported, never the web process's problem
        answer = {"status": "crash", "message": f"{type(exc).__name__}: {exc}"}
    answer["peak_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        data = json.dumps(answer, ensure_ascii=False).encode()
    except MemoryError:
        data = json.dumps({"status": "memory", "peak_kb": answer["peak_kb"]}).encode()
    except (TypeError, ValueError) as exc:  # an answer that is not JSON: a bug, reported as such
        data = json.dumps({"status": "crash", "message": f"cannot return {exc}", "peak_kb": 0}).encode()
    try:
        conn.send_bytes(data)
    finally:
        conn.close()


def _rebuild(name: str, message: str, msgid: Any = None, params: Any = None) -> DispatcherError:
    # Only a class of dispatcher.errors, chosen by name; without calling its own __init__ (some take
    # other arguments): same type, same message (and the same message as data, for the web's languages).
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, DispatcherError)):
        cls = SpreadsheetError
    exc = cls.__new__(cls)
    exc.args = (message,)
    if isinstance(msgid, str) and isinstance(params, dict | None):
        exc.msgid, exc.params = msgid, params
    return exc


class Sandbox:
    def __init__(
        self,
        memory_mb: int,
        *,
        workers: int = 2,
        timeout_s: float = TIMEOUT_S,
        busy_wait_s: float = BUSY_WAIT_S,
    ) -> None:
        self.memory_mb = memory_mb
        self.workers = workers
        self.timeout_s = timeout_s
        self.busy_wait_s = busy_wait_s
        self._slots = threading.BoundedSemaphore(workers)
        self.peaks_kb: collections.deque[int] = collections.deque(maxlen=100)  # children's max RSS

    def run(self, what: str, func: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """``func(*args)`` in a limited child; ``what`` (the file's name) starts every error message.
        ``timeout_s``: a shorter limit than the sandbox's (a page should not wait minutes)."""
        limit = said = min(timeout_s or self.timeout_s, self.timeout_s)
        budget = _BUDGET.get()
        if budget is not None:  # within a page's time for all its readings: what is left of it
            ends_at, said_budget = budget
            left = ends_at - time.monotonic()
            if left < limit:
                limit, said = left, said_budget
        if limit <= 0:
            raise SpreadsheetError(f"{what}: reading the file took longer than {said:.0f} s and was stopped")
        if not self._slots.acquire(timeout=self.busy_wait_s):
            raise Busy(f"{what}: the server is reading other files; try again in a minute")
        try:
            return self._run(what, func, args, limit, said)
        finally:
            self._slots.release()

    @staticmethod
    def within(budget_s: float, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` whose readings (every :meth:`run` it makes) take ``budget_s`` in all: a page
        that reads a list three times (template A, template B, the compose page's columns) holds its
        turn one timeout, not three."""
        token = _BUDGET.set((time.monotonic() + budget_s, budget_s))
        try:
            return func(*args)
        finally:
            _BUDGET.reset(token)

    def _run(
        self, what: str, func: Callable[..., T], args: tuple[Any, ...], timeout_s: float, said_s: float
    ) -> T:
        receiver, sender = _CONTEXT.Pipe(duplex=False)
        child = _CONTEXT.Process(target=_child, args=(sender, self.memory_mb << 20, func, args), daemon=True)
        child.start()
        sender.close()
        try:
            if not receiver.poll(timeout_s):
                child.kill()
                raise SpreadsheetError(
                    f"{what}: reading the file took longer than {said_s:.0f} s and was stopped"
                )
            try:
                answer = json.loads(receiver.recv_bytes())
            except EOFError:  # the child died: calamine aborted, or the kernel killed it
                child.join(10)
                log.info("reading %s killed its child process (exit %s)", what, child.exitcode)
                raise self._too_big(what) from None
        finally:
            receiver.close()
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
        self.peaks_kb.append(int(answer.get("peak_kb", 0)))
        status = answer.get("status")
        if status == "ok":
            value: T = answer["value"]
            return value
        if status == "error":
            raise _rebuild(
                str(answer["type"]), str(answer["message"]), answer.get("msgid"), answer.get("params")
            )
        if status == "memory":
            raise self._too_big(what)
        log.error("reading %s failed in its child process: %s", what, answer.get("message"))
        raise SpreadsheetError(f"{what}: the file could not be read ({answer.get('message')})")

    def _too_big(self, what: str) -> SpreadsheetError:
        return SpreadsheetError(
            f"{what}: reading the file was stopped: it needed more than the {self.memory_mb:,} MB allowed "
            "(setting parse_memory_mb) or crashed the spreadsheet reader; the file may be crafted or damaged"
        )


def read_first_if_unscanned(path: Path, sheet: str | int | None, settings: Settings) -> None:
    """For the command line: the guard does not scan the sheets of xls, xlsb and ods files, so such a
    sheet is read once in a limited child before this process reads it; a crafted one fails there,
    with a message, instead of aborting the command."""
    if path.suffix.lower() not in UNSCANNED_SUFFIXES or not path.is_file():
        return
    sandbox = Sandbox(settings.parse_memory_mb, workers=1)
    sandbox.run(path.name, read_through, path, sheet, settings.sheet_limits)

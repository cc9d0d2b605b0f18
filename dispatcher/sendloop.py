"""A worker process's sending core: one asyncio event loop, on a thread of its own, that keeps every
request of the process's tasks in flight at once (``Transport.asend``: aiohttp).

A task (on Celery's main thread, or one of a thread pool's) hands its round of coroutines over with
:meth:`SendLoop.submit` and waits for the whole round. The loop runs on its own thread so that a signal
(Celery cancels a task with SIGTERM, raised as ``SystemExit`` in the main thread) interrupts the wait,
never a request half-written: the caller waits again for the answers on the wire and records them.
One loop per process, made on first use after a fork (a loop's thread does not survive one).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

logger = logging.getLogger(__name__)
_POLL = 1.0  # seconds between checks that the loop still runs while a round is awaited


class SendLoop:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="send-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._loop.run_forever()
        except BaseException:
            # A SystemExit or KeyboardInterrupt raised in a coroutine ends run_forever (asyncio re-raises
            # them): the thread is gone, its rounds never finish. :meth:`wait` and :func:`default` see it.
            logger.critical("the sending loop stopped", exc_info=True)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._loop.is_closed()

    def submit(self, coroutines: Sequence[Coroutine[Any, Any, T]]) -> Future[list[T]]:
        """Run ``coroutines`` concurrently on the loop; the future gives their results in order."""

        async def together() -> list[T]:
            return list(await asyncio.gather(*coroutines))

        return asyncio.run_coroutine_threadsafe(together(), self._loop)

    def call(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the loop's thread, soon (from any thread)."""
        self._loop.call_soon_threadsafe(callback)

    def wait(self, future: Future[T]) -> T:
        """``future``'s result; a ``RuntimeError`` if the loop died under it, rather than waiting forever
        (its requests may have left: their chunks stay ``sending`` for the sweep to call unknown).
        Interruptible by a signal (a termination) like ``future.result()``."""
        while not concurrent.futures.wait([future], timeout=_POLL).done:
            if not self._thread.is_alive():
                raise RuntimeError("the sending loop stopped mid-round")
        return future.result()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


_default: SendLoop | None = None
_default_pid: int | None = None
_lock = threading.Lock()


def default() -> SendLoop:
    """This process's loop (made again after a fork, or once its thread died)."""
    global _default, _default_pid
    with _lock:
        if _default is None or _default_pid != os.getpid() or not _default.alive:
            _default, _default_pid = SendLoop(), os.getpid()
        return _default

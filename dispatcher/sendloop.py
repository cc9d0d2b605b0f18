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
import os
import threading
from collections.abc import Coroutine, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class SendLoop:
    """An event loop running forever on a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="send-loop", daemon=True)
        self._thread.start()

    def submit(self, coroutines: Sequence[Coroutine[Any, Any, T]]) -> Future[list[T]]:
        """Run ``coroutines`` concurrently on the loop; the future gives their results in order."""

        async def together() -> list[T]:
            return list(await asyncio.gather(*coroutines))

        return asyncio.run_coroutine_threadsafe(together(), self._loop)

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
    """This process's loop (made again after a fork)."""
    global _default, _default_pid
    with _lock:
        if _default is None or _default_pid != os.getpid():
            _default, _default_pid = SendLoop(), os.getpid()
        return _default

"""Long requests (reading an upload, writing an export) kept off the server's shared thread pool.

Starlette runs every plain ``def`` endpoint in one pool of 40 threads, and every page needs it (sign-in
included). A request that waited there for a slow reading kept a thread, so a sender firing a few dozen
of them froze the app for everyone. Such requests take a turn here instead: at most ``size`` run at once,
each in a thread of its own; the others wait without a thread, and after ``wait_s`` get :class:`Busy`
(503, "try again"). The turns also bound what runs at once in the web process itself (creating a
campaign reads its list there), not only in the sandbox's children.

    readers = Turns(2)
    page = await readers.run(30.0, "the server is reading other files; try again in a minute", func, *args)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from dispatcher.contacts.sandbox import Busy

T = TypeVar("T")


class Turns:
    def __init__(self, size: int) -> None:
        self.size = size
        self._turns = anyio.CapacityLimiter(size)
        # The threads' own limiter: never contended (a turn is taken first), and not the shared pool's.
        self._threads = anyio.CapacityLimiter(size)

    async def run(self, wait_s: float, busy: str, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a thread once a turn is free; :class:`Busy` with ``busy`` after ``wait_s``."""
        taken = False
        with anyio.move_on_after(wait_s):
            await self._turns.acquire()
            taken = True
        if not taken:
            raise Busy(busy)
        try:
            return await anyio.to_thread.run_sync(func, *args, limiter=self._threads)
        finally:
            self._turns.release()

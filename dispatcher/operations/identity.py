"""Who this process is: ``host:pid:random``. Containers may share a hostname and a pid (each its own pid
namespace), so a random part made once per process keeps two of them apart: claims' owner ids and
heartbeats both use it."""

from __future__ import annotations

import os
import secrets
import socket

_token: tuple[int, str] | None = None  # (pid, token): made again in a forked child


def process_token() -> str:
    """Eight random hex digits, the same for the life of this process (a forked child gets its own)."""
    global _token
    pid = os.getpid()
    if _token is None or _token[0] != pid:
        _token = (pid, secrets.token_hex(4))
    return _token[1]


def process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{process_token()}"

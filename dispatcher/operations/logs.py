"""Optional JSON logs (``log_format = "json"``): one object a line, for a log shipper.

Each line has ``time`` (UTC ISO-8601), ``level``, ``logger``, ``message``, ``process`` (the process id of
``operations.identity``) and, when the code that logged was working on them, ``campaign_id``,
``chunk_ids`` and ``account``: set for a stretch of work with :func:`context`, or per call through
``extra={"campaign_id": ...}``.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from dispatcher.operations.identity import process_id

FIELDS = ("campaign_id", "chunk_ids", "account")
_context: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar("log_context", default=None)


@contextlib.contextmanager
def context(**ids: Any) -> Iterator[None]:
    """Log lines written inside carry ``ids`` (``campaign_id=``, ``chunk_ids=``, ``account=``)."""
    token = _context.set({**(_context.get() or {}), **ids})
    try:
        yield
    finally:
        _context.reset(token)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": process_id(),
        }
        line.update(_context.get() or {})
        for key in FIELDS:
            if (value := getattr(record, key, None)) is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def use_json(logger: logging.Logger | None = None) -> None:
    """Every handler of ``logger`` (default: the root logger) writes JSON lines."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(JsonFormatter())

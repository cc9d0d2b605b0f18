"""A list rewritten while a campaign is made from it is refused, never stored half from each version."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from dispatcher import campaigns
from dispatcher.contacts import IngestResult
from dispatcher.errors import InputError
from dispatcher.store import Campaign, Recipient, Upload
from tests.stack import Stack, write_contacts


def test_given_the_list_rewritten_after_it_was_read_when_created_then_refused_and_nothing_stored(
    make_stack: Callable[..., Stack], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = make_stack(worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [("13900000002", "王"), ("13900000003", "李")])
    read = campaigns.ingest

    def then_rewritten(*args: Any, **kwargs: Any) -> IngestResult:
        # A writer (an export job feeding a schedule's folder) replaces the file once it has been read
        result = read(*args, **kwargs)
        write_contacts(path, [("13900000009", "赵"), ("13900000002", "王")])
        return result

    monkeypatch.setattr(campaigns, "ingest", then_rewritten)
    with pytest.raises(InputError, match=r"c\.xlsx changed while it was read: nothing was stored"):
        campaigns.create(
            stack.sessions,
            stack.settings,
            path,
            "{姓名}您好，回T退订【测试】",
            stack.accounts["yunxin"],
            actor="t",
        )
    with stack.sessions() as session:
        for table in (Campaign, Recipient, Upload):
            assert session.scalar(select(func.count()).select_from(table)) == 0

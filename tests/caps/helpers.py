"""What the caps tests share: a cap added to a stack's settings, a campaign of given numbers."""

from __future__ import annotations

import os

from dispatcher import campaigns, runtime
from dispatcher.config import Settings
from tests.stack import Stack, write_contacts

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"


def _caps(stack: Stack, line: str) -> None:
    """Add a top-level setting to the stack's config; the worker's runtime reads it anew."""
    path = stack.tmp / "dispatcher.toml"
    path.write_text(line + "\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    runtime.reset()
    stack.settings = Settings.load()


def _create(stack: Stack, mobiles: list[str], vendor: str = "trigger", **kwargs: object) -> int:
    path = write_contacts(stack.tmp / f"c{len(os.listdir(stack.tmp))}.xlsx", [(m, "张三") for m in mobiles])
    created = campaigns.create(
        stack.sessions,
        stack.settings,
        path,
        TEMPLATE,
        stack.accounts[vendor],
        actor="t",
        **kwargs,  # type: ignore[arg-type]
    )
    return created.campaign_id

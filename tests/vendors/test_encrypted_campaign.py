"""An encrypted trigger account, end to end: upload, plan, real workers, the simulator decrypting.

Trigger API v1.8's sendMsgByEncrypt takes one number per request; the encrypted text is code page 936
(names such as 喆, 镕, 珺, 昇 go through); a ``&`` in it would be cut by the gateway, so such a row is
refused at upload.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from dispatcher import campaigns
from dispatcher.config import Settings
from dispatcher.store import Attempt, Chunk
from tests.stack import Stack, write_contacts
from workers.tasks import enqueue

NAMES = ("喆", "镕", "珺", "昇")


def encrypt_account(stack: Stack, name: str) -> Settings:
    """Turn ``encrypted = true`` on for account ``name`` in the stack's config (before any task ran)."""
    path = stack.tmp / "dispatcher.toml"
    header = f'[accounts."{name}"]\n'
    path.write_text(path.read_text(encoding="utf-8").replace(header, header + "encrypted = true\n"), "utf-8")
    return Settings.load()


def test_given_an_encrypted_trigger_account_when_a_campaign_is_sent_then_one_number_a_request_and_every_name(
    make_stack: Any,
) -> None:
    stack = make_stack()
    account = stack.accounts["trigger"]
    settings = encrypt_account(stack, account)
    assert settings.account(account).encrypted
    rows = [(str(13900000000 + i), NAMES[i % 4] + "先生") for i in range(60)] + [("13900000999", "A&B公司")]
    path = write_contacts(stack.tmp / "c.xlsx", rows)

    created = campaigns.create(
        stack.sessions, settings, path, "{姓名}您好，您的包裹已到，回T退订【测试】", account, actor="t"
    )
    # One number per request, all sendMsgByEncrypt; the '&' row refused before anything is sent.
    assert chunk_sizes(stack, created.campaign_id) == Counter({1: 60})
    assert [(r.row, r.reason) for r in created.result.rejected] == [
        (62, "'&' cannot go through an encrypted method")
    ]
    enqueue(campaigns.start(stack.sessions, created.campaign_id, "t"), app=stack.app)

    def all_accepted() -> bool:
        with stack.sessions() as session:
            return bool(campaigns.status(session, created.campaign_id)["accepted"] == 60)

    stack.wait_for(all_accepted, timeout=90)
    ledger = [e for e in stack.sim.ledger()["accepted"] if e["vendor"] == "trigger"]
    assert sorted((e["mobile"], e["content"]) for e in ledger) == sorted(
        (m, f"{n}您好，您的包裹已到，回T退订【测试】") for m, n in rows[:60]
    )
    with stack.sessions() as session:
        requests = session.execute(select(Attempt.request)).scalars().all()
    assert len(requests) == 60
    assert all(r is not None and set(r) == {"userCode", "submitInfo", "autograph"} for r in requests)
    assert {r["submitInfo"] for r in requests if r} == {"***"}  # never stored in clear


def chunk_sizes(stack: Stack, campaign_id: int) -> Counter[int]:
    with stack.sessions() as session:
        rows = session.execute(
            select(Chunk.recipient_count, Chunk.method).where(Chunk.campaign_id == campaign_id)
        ).all()
    assert {method for _, method in rows} == {"sendMsgByEncrypt"}
    return Counter(count for count, _ in rows)

"""What the vendor's refusals of a request do to it, over HTTP: a content refusal of a personalised
request isolates the refused message, and an answer code nobody can classify is left unknown, never sent
again by itself."""

from __future__ import annotations

import logging
import time
from collections import Counter

import pytest

from dispatcher import campaigns
from tests.dispatch.scenario import chunks, drive, ledger, recipients, runtime_for, send
from tests.stack import write_contacts
from tests.vendors.loopback import gateway

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"


@pytest.mark.parametrize(
    ("vendor", "word", "code"), [("trigger", "代开发票", "-54"), ("yunxin", "六合彩", "-6")]
)
def test_given_one_forbidden_word_in_a_personalised_request_then_only_its_recipient_fails(
    make_stack, vendor: str, word: str, code: str
) -> None:
    # Given a campaign of ten names in one personalised request, one name holding a word the gateway
    # refuses (trigger has no keyword list; yunxin's was not pulled: the dispatcher cannot see it coming)
    stack = make_stack(worker=False)
    names = [f"顾客{i}" for i in range(10)]
    names[6] = word
    rows = [(str(13900000000 + i), name) for i, name in enumerate(names)]
    created = campaigns.create(
        stack.sessions, stack.settings, write_contacts(stack.tmp / "c.xlsx", rows), TEMPLATE,
        stack.accounts[vendor], actor="t",
    )  # fmt: skip
    campaign_id = created.campaign_id
    assert [c.texts is not None for c in created.chunks] == [True]
    campaigns.start(stack.sessions, campaign_id, "t")

    # When it is sent (splits included)
    runtime = runtime_for(stack, vendor)
    try:
        drive(stack, runtime, campaign_id)
    finally:
        runtime.transport.close()

    # Then the refusal was split down to the refused message: it alone failed, the nine others went once
    states = recipients(stack, campaign_id)
    assert states.pop("13900000006") == ("failed", "bad_content", code)
    if vendor == "yunxin":  # it names the word: the texts holding it are parted from the rest at once
        assert len(chunks(stack, campaign_id)) == 3
    assert set(states.values()) == {("accepted", None, None)}
    assert ledger(stack) == Counter(list(states))


def test_given_an_answer_code_missing_from_the_vendors_table_then_it_is_unknown_never_resent_and_logged(
    make_stack, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a gateway answering a code its table does not have, with a remark echoing the password
    stack = make_stack(worker=False)
    rows = [(str(13900000000 + i), "张三") for i in range(3)]
    created = campaigns.create(
        stack.sessions, stack.settings, write_contacts(stack.tmp / "c.xlsx", rows), TEMPLATE,
        stack.accounts["trigger"], actor="t",
    )  # fmt: skip
    campaign_id = created.campaign_id
    ids = campaigns.start(stack.sessions, campaign_id, "t")
    password = stack.settings.account(stack.accounts["trigger"]).password
    with gateway("status", status=200, answer=f"-987:taken for {password}".encode()) as gw:
        runtime = runtime_for(stack, "trigger", gw.url)
        try:
            # When the request is answered so, and the worker comes back to the chunk later
            with caplog.at_level(logging.WARNING, logger="dispatcher.dispatch"):
                (result,) = send(stack, runtime, ids)
            time.sleep(0.2)
            send(stack, runtime, ids)
        finally:
            runtime.transport.close()
        sent = len(gw.seen)

    # Then the chunk is unknown (it may have been taken), sent once only, and the answer is logged with
    # its body, the password masked
    (chunk,) = chunks(stack, campaign_id)
    assert (result.state, chunk.state, chunk.code, sent) == ("unknown", "unknown", "-987", 1)
    assert {s for s, _, _ in recipients(stack, campaign_id).values()} == {"unknown"}
    (logged,) = [r.getMessage() for r in caplog.records if "cannot classify" in r.getMessage()]
    assert "-987:taken for ***" in logged and password not in logged.replace("-987:taken for ***", "")


@pytest.mark.parametrize(("vendor", "name"), [("trigger", "-|王"), ("trigger", "~|王"), ("yunxin", "^|王")])
def test_given_a_name_that_forms_a_separator_as_packed_then_no_message_of_its_request_is_lost(
    make_stack, vendor: str, name: str
) -> None:
    # Given a personalised campaign one of whose names, after the number-text separator ("|~|"),
    # completes a separator ("|~|-|" holds trigger's "|-|"; "|!|^|" yunxin's "|^|")
    stack = make_stack(worker=False)
    names = [f"顾客{i}" for i in range(8)]
    names[3] = name
    rows = [(str(13900000000 + i), n) for i, n in enumerate(names)]
    created = campaigns.create(
        stack.sessions, stack.settings, write_contacts(stack.tmp / "c.xlsx", rows), TEMPLATE,
        stack.accounts[vendor], actor="t",
    )  # fmt: skip
    campaigns.start(stack.sessions, created.campaign_id, "t")

    # When it is sent
    runtime = runtime_for(stack, vendor)
    try:
        drive(stack, runtime, created.campaign_id)
    finally:
        runtime.transport.close()

    # Then every message went once, as written: that name alone, the others packed together
    assert {s for s, _, _ in recipients(stack, created.campaign_id).values()} == {"accepted"}
    sent = {e["mobile"]: e["content"] for e in stack.sim.ledger()["accepted"]}
    assert ledger(stack) == Counter(m for m, _ in rows)
    assert sent == {m: TEMPLATE.replace("{姓名}", n) for m, n in rows}
    assert len(created.chunks) == 2

"""A/B variants: templates drawn per row, reproducibly (seeded by the campaign), one variant per chunk,
per-variant figures and a two-proportion test on reply rates; end to end with a real worker, the beat's
tick and result cycle, and the simulator."""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dispatcher import campaigns, variants
from dispatcher.cli import app as cli_app
from dispatcher.errors import InputError
from dispatcher.results import campaign_export, cycle
from dispatcher.runtime import Runtime
from dispatcher.store import Chunk, Recipient
from tests.helpers import table_rows
from tests.routing.conftest import Acct, RoutingStack
from tests.stack import write_contacts
from workers import tasks
from workers.tasks import enqueue

A = "{姓名}您好，会员日全场8折，回T退订【测试】"
B = "{姓名}您好，今天到店有礼，回T退订【测试】"


# ---- pure ------------------------------------------------------------------------------------------


def test_given_a_split_when_drawn_then_shares_follow_it_and_the_same_campaign_draws_the_same() -> None:
    weights = variants.parse_split("70,30", 2)
    draws = [variants.draw(7, row, weights) for row in range(2, 10_002)]
    share = draws.count(0) / len(draws)
    assert 0.68 < share < 0.72
    assert draws == [variants.draw(7, row, weights) for row in range(2, 10_002)]  # reproducible
    assert draws != [variants.draw(8, row, weights) for row in range(2, 10_002)]  # seeded by the campaign
    assert variants.parse_split(None, 3) == [1, 1, 1]


@pytest.mark.parametrize("bad", ["70", "70,30,0", "a,b", "70,-30", "0,100", "70,²", "1," + "9" * 5000])
def test_given_a_bad_split_then_it_is_refused_naming_it(bad: str) -> None:
    with pytest.raises(InputError, match="split"):
        variants.parse_split(bad, 2)


def test_two_proportion_z_test_matches_the_textbook_figures() -> None:
    # 30/100 against 15/100: pooled 0.225, z = 0.15 / sqrt(0.225 × 0.775 × 0.02) = 2.5400, p = 0.0111
    z, p = variants.two_proportion(30, 100, 15, 100) or (0.0, 1.0)
    assert math.isclose(z, 2.5400, abs_tol=1e-4) and math.isclose(p, 0.01109, abs_tol=1e-4)
    z, p = variants.two_proportion(10, 100, 11, 100) or (0.0, 0.0)
    assert p > 0.05
    assert variants.two_proportion(0, 0, 1, 10) is None and variants.two_proportion(0, 10, 0, 10) is None


# ---- end to end ------------------------------------------------------------------------------------


def test_given_an_ab_campaign_when_sent_and_replied_then_each_variant_has_its_figures_and_the_test_says_significant(
    routing_stack: Any,
) -> None:
    stack: RoutingStack = routing_stack([Acct("yx", "yunxin", "yx")])
    names = ["张三", "李四", "王五"]
    rows = [(str(13900000000 + i), names[i % 3]) for i in range(400)]
    path = write_contacts(stack.tmp / "c.xlsx", rows)

    # Given `campaign create --template A --template B --split 70,30`
    runner = CliRunner()
    result = runner.invoke(
        cli_app,
        ["campaign", "create", str(path), "--template", A, "--template", B, "--split", "70,30",
         "--account", stack.names["yx"], "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    campaign_id = json.loads(result.output)["id"]

    # Then every row has a variant, about 70/30, each chunk carries one variant, and the texts follow it
    with stack.sessions() as session:
        assigned = dict(
            session.execute(
                select(Recipient.mobile, Recipient.variant).where(Recipient.campaign_id == campaign_id)
            ).all()
        )
        per_chunk = session.execute(
            select(Recipient.chunk_id, Recipient.variant).where(Recipient.campaign_id == campaign_id)
        ).all()
        chunks = session.execute(select(Chunk.id).where(Chunk.campaign_id == campaign_id)).scalars().all()
    assert set(assigned.values()) == {"A", "B"}
    assert 0.6 < Counter(assigned.values())["A"] / 400 < 0.8
    by_chunk: dict[int, set[str]] = {}
    for chunk_id, variant in per_chunk:
        by_chunk.setdefault(chunk_id, set()).add(variant)
    assert all(len(v) == 1 for v in by_chunk.values()) and len(chunks) == 2  # yunxin: one request per variant
    # ... the same campaign id draws the same rows again (reproducible)
    assert all(
        variants.NAMES[variants.draw(campaign_id, 2 + i, [70, 30])] == assigned[m]
        for i, (m, _) in enumerate(rows)
    )

    # When it is sent, the workers and the beat doing their work
    enqueue(campaigns.start(stack.sessions, campaign_id, "t"), app=stack.app)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        tasks.run_tick(stack.app)
        with stack.sessions() as session:
            if campaigns.status(session, campaign_id)["state"] in ("sent", "completed"):
                break
        time.sleep(0.3)
    ledger = stack.ledger()
    assert Counter(e["mobile"] for e in ledger) == Counter(m for m, _ in rows)
    texts = {"A": "会员日全场8折", "B": "今天到店有礼"}
    assert all(texts[assigned[e["mobile"]]] in e["content"] for e in ledger)

    # ... and many A numbers reply, few B numbers (one opts out), and the beat's result cycle runs
    a_numbers = sorted(m for m, v in assigned.items() if v == "A")[:60]
    b_numbers = sorted(m for m, v in assigned.items() if v == "B")[:3]
    for mobile in a_numbers + b_numbers[:2]:
        stack.sim.add_reply("yunxin", "yx", mobile, "好的")
    stack.sim.add_reply("yunxin", "yx", b_numbers[2], "TD")
    runtime = Runtime.from_settings(stack.settings)
    try:
        cycle.run(runtime)
    finally:
        runtime.close()

    # Then status --json gives each variant's figures and says the reply rates differ significantly
    shown = json.loads(runner.invoke(cli_app, ["campaign", "status", str(campaign_id), "--json"]).output)
    count = Counter(assigned.values())
    va, vb = shown["variants"]["A"], shown["variants"]["B"]
    assert (va["recipients"], va["accepted"], va["delivered"], va["undelivered"]) == (
        count["A"],
        count["A"],
        count["A"],
        0,
    )
    assert (vb["recipients"], vb["replies"], vb["opt_outs"]) == (count["B"], 3, 1)
    assert (va["replies"], va["opt_outs"]) == (60, 0)
    assert va["reply_rate"] == round(60 / count["A"], 4) and va["delivery_rate"] == 1.0
    assert set(va) == {
        "recipients",
        "accepted",
        "delivered",
        "undelivered",
        "replies",
        "opt_outs",
        "delivery_rate",
        "reply_rate",
    }
    test = shown["variant_test"]
    assert test["significant"] is True and test["p_value"] < 0.05 and test["compared"] == ["A", "B"]

    # ... and the plain status shows the same: a row per variant, and the test's verdict
    plain = runner.invoke(cli_app, ["campaign", "status", str(campaign_id)], env={"COLUMNS": "200"}).output
    cells = {row[0]: row[1:] for row in table_rows(plain, "by variant")}
    assert cells["A"][:2] == [str(count["A"])] * 2 and cells["A"][4] == "60"
    assert cells["B"][0] == str(count["B"]) and cells["B"][4:] == ["3", str(vb["reply_rate"]), "1"]
    assert f"A vs B, reply_rate: z = {test['z']}, p = {test['p_value']}: a significant difference" in plain

    # ... and the export names each row's variant
    out = stack.tmp / "out.csv"
    with stack.sessions() as session:
        campaign_export.export(session, campaign_id, out)
    with out.open(encoding="utf-8-sig", newline="") as f:
        assert {r["mobile"]: r["variant"] for r in csv.DictReader(f)} == assigned


def test_given_a_split_that_does_not_fit_the_templates_then_create_refuses_it_and_stores_nothing(
    routing_stack: Any,
) -> None:
    stack: RoutingStack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    path = write_contacts(stack.tmp / "c.xlsx", [("13900000000", "张三")])
    base = ["campaign", "create", str(path), "--account", stack.names["yx"], "--template", A]
    for extra in (["--split", "70,30"], ["--template", B, "--split", "70,20,10"]):
        result = CliRunner().invoke(cli_app, [*base, *extra])
        assert result.exit_code == 2 and "split" in result.output
    with stack.sessions() as session:
        assert session.execute(select(Chunk.id)).first() is None


def test_given_a_number_twice_whose_first_row_only_one_wording_rejects_then_it_is_sent_once(
    tmp_path: Any,
) -> None:
    from dispatcher.contacts import ingest

    # Row 2 has no 城市 (only template B uses it); row 3 is the same number with one
    path = write_contacts(
        tmp_path / "c.xlsx",
        [("13900000001", "张三", None), ("13900000001", "张三", "上海"), ("13900000002", "李四", "北京")],
        header=("手机号", "姓名", "城市"),
    )
    results = [ingest(path, t) for t in (A, "{姓名}您好，{城市}门店有礼，回T退订【测试】")]
    # A campaign whose draw gives row 2 to A and row 3 to B: each rendering alone keeps the number
    campaign_id = next(c for c in range(1, 1000) if [variants.draw(c, r, [1, 1]) for r in (2, 3)] == [0, 1])

    merged, variant_of = variants.merge(results, campaign_id, [1, 1])

    assert merged.messages.mobiles.count("13900000001") == 1
    assert merged.messages.rows[0] == 2 and variant_of[0] == 0
    (dup,) = [r for r in merged.rejected if r.row == 3]
    assert (dup.code, dup.params) == ("duplicate_other_text", {"row": 2})  # row 2 sends A's wording
    assert sorted([*merged.messages.rows, *(r.row for r in merged.rejected)]) == [2, 3, 4]  # every row once


def test_given_a_row_only_its_own_wording_rejects_then_a_later_row_of_its_number_is_still_sent(
    routing_stack: Any,
) -> None:
    stack: RoutingStack = routing_stack([Acct("yx", "yunxin", "yx")], worker=False)
    # Given sixteen numbers, each on two rows: the first without a 城市 (only template B uses it),
    # the second with one
    rows: list[tuple[str, str, str | None]] = []
    for i in range(16):
        rows += [(str(13900000000 + i), "张三", None), (str(13900000000 + i), "张三", "上海")]
    path = write_contacts(stack.tmp / "c.xlsx", rows, header=("手机号", "姓名", "城市"))
    b = "{姓名}您好，{城市}门店有礼，回T退订【测试】"

    # When an A/B campaign is created from it
    created = campaigns.create(
        stack.sessions, stack.settings, path, A, stack.names["yx"], actor="t", variant_templates=[b]
    )

    # Then a number is sent once when a row of it is drawn a wording that takes it: a first row rejected
    # by its own wording (B) does not take its number from the second row (drawn A)
    with stack.sessions() as session:
        kept = Counter(
            session.execute(
                select(Recipient.mobile).where(
                    Recipient.campaign_id == created.campaign_id, Recipient.state != "rejected"
                )
            ).scalars()
        )
    draws = [variants.draw(created.campaign_id, row, [1, 1]) for row in range(2, 2 + len(rows))]
    sendable = {
        rows[i][0] for i, d in enumerate(draws) if d == 0 or rows[i][2] is not None
    }  # A always renders; B only with a 城市
    assert kept == Counter(sendable)
    assert any(draws[2 * i : 2 * i + 2] == [1, 0] for i in range(16))  # the case in point occurred


def test_given_an_opted_out_number_twice_in_an_ab_test_then_its_first_row_is_opted_out_the_next_a_duplicate(
    tmp_path: Any,
) -> None:
    from dispatcher.contacts import ingest

    path = write_contacts(tmp_path / "c.xlsx", [("13900000001", "张三"), ("13900000001", "张三")])
    results = [ingest(path, t, opt_outs={"13900000001"}, dedupe=False) for t in (A, B)]
    merged, _ = variants.merge(results, 1, [1, 1])
    assert not merged.messages.mobiles
    assert [(r.row, r.code) for r in merged.rejected] == [(2, "opted_out"), (3, "duplicate")]


def test_given_a_repeated_number_in_an_ab_test_then_its_duplicate_says_whether_its_text_differed(
    tmp_path: Any,
) -> None:
    from dispatcher.contacts import ingest

    path = write_contacts(
        tmp_path / "c.xlsx", [("13900000001", "张三"), ("13900000001", "张三"), ("13900000001", "李四")]
    )
    results = [ingest(path, t, dedupe=False) for t in (A, A)]  # one wording twice: the draw cannot matter
    merged, _ = variants.merge(results, 1, [1, 1])
    assert merged.messages.rows == [2]
    assert [(r.row, r.code) for r in merged.rejected] == [(3, "duplicate"), (4, "duplicate_other_text")]

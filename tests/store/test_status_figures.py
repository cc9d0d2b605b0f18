"""A campaign's figures (its page, ``/api/campaigns/N``, ``campaign status``) stay right and stay cheap at
a million recipients: the segments sent and the failures by code come from indexes alone (migration 0019)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text

from dispatcher import campaigns
from tests.store.conftest import Store, make_campaign, make_chunk

# (state, segments, report status, vendor code) per recipient
MIX = [
    ("delivered", 1, "DELIVRD", "0"),
    ("delivered", 2, "DELIVRD", "0"),
    ("undelivered", 3, "UNDELIV", "0"),
    ("undelivered", 1, "EXPIRED", "0"),
    ("accepted", 2, None, "0"),
    ("expired", 1, None, "0"),
    ("failed", 2, None, "-16"),
    ("failed", 1, None, "-16"),
    ("queued", 4, None, None),
]


def sent_campaign(store: Store) -> int:
    with store.session() as session:
        campaign_id = make_campaign(session)
        make_chunk(session, campaign_id, 0, [f"1380000{i:04d}" for i in range(len(MIX))])
        for position, (state, segments, status, code) in enumerate(MIX):
            session.execute(
                text("UPDATE recipients SET state = :s, segments = :g, report_status = :r, vendor_code = :c"
                     " WHERE campaign_id = :k AND position = :p"),
                {"s": state, "g": segments, "r": status, "c": code, "k": campaign_id, "p": position},
            )  # fmt: skip
        session.commit()
    return campaign_id


def test_given_a_sent_campaign_when_its_status_is_read_then_segments_and_failures_are_counted_right(
    store: Store,
) -> None:
    # Given a campaign whose recipients went every way
    campaign_id = sent_campaign(store)
    # When its figures are read
    with store.session() as session:
        data = campaigns.status(session, campaign_id)
    # Then the segments sent count every recipient the vendor took (not the failed, not the queued)
    assert data["segments_sent"] == 1 + 2 + 3 + 1 + 2 + 1
    # And the failures are counted by report status, else by the vendor's code
    assert data["failure_codes"] == {"-16": 2, "EXPIRED": 1, "UNDELIV": 1}
    assert (data["delivered"], data["undelivered"], data["failed"], data["queued"]) == (2, 2, 2, 1)


def test_given_sqlite_when_a_campaigns_status_is_read_then_no_query_reads_recipient_rows(
    store: Store,
) -> None:
    # Given a sent campaign (SQLite: its query plans are what the page pays at a million recipients)
    if store.engine.dialect.name != "sqlite":
        return  # PostgreSQL's plans depend on its statistics; the figures above are checked on both
    campaign_id = sent_campaign(store)
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "recipients" in statement:
            seen.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        with store.session() as session:
            campaigns.status(session, campaign_id)
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    # Then every query on the recipients answers from an index alone, none reads their rows
    assert seen
    with store.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        for statement, parameters in seen:
            plan = [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", parameters)]
            on_recipients = [step for step in plan if " recipients " in f"{step} "]
            assert on_recipients, plan
            assert all("COVERING INDEX" in step for step in on_recipients), (statement, plan)

"""Two refreshes of one account's forbidden words at once (``dispatcher keywords pull`` while the beat's
daily refresh runs): both finish, and the account ends with one of the two lists, whole."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event

from dispatcher import keywords
from dispatcher.store import make_engine, session_factory

ACCOUNT = "yx-race"
MANUAL = ("代开发票", "六合彩", "赌博")
DAILY = ("代开发票", "六合彩", "澳门首家")  # the vendor changed its list between the two pulls


def test_given_two_concurrent_refreshes_of_an_account_then_both_finish_and_one_list_is_stored_whole(
    database_url: str,
) -> None:
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    # Both refreshes read whatever they read first, then meet here, right before the first statement
    # that writes (or locks) the account's words: the tightest interleaving two processes can have.
    meet = threading.Barrier(2, timeout=60)
    passed = threading.local()

    @event.listens_for(engine, "before_cursor_execute")
    def rendezvous(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        writes = (
            statement.lstrip()
            .upper()
            .startswith(("INSERT INTO VENDOR_KEYWORDS", "DELETE FROM VENDOR_KEYWORDS"))
        )
        if (writes or "pg_advisory_xact_lock" in statement) and not getattr(passed, "done", False):
            passed.done = True
            meet.wait()

    errors: list[BaseException] = []

    def refresh(words: Sequence[str], actor: str) -> None:
        try:
            with sessions() as session:
                keywords.save(session, ACCOUNT, words, actor)
                session.commit()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [
        threading.Thread(target=refresh, args=(MANUAL, "cli")),
        threading.Thread(target=refresh, args=(DAILY, "beat")),
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        event.remove(engine, "before_cursor_execute", rendezvous)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        with sessions() as session:
            stored = keywords.stored(session, ACCOUNT)
        # One refresh after the other: the last one's list, never a mix of the two.
        assert stored in (tuple(sorted(MANUAL)), tuple(sorted(DAILY)))
        # And a refresh that finds the list unchanged changes nothing.
        with sessions() as session:
            again = keywords.save(session, ACCOUNT, stored, "cli")
            session.commit()
        assert (again.words, again.added, again.removed) == (3, 0, 0)
    finally:
        engine.dispose()

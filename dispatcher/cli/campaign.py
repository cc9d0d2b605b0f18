"""Campaign commands, ``dispatcher worker``/``beat``, and ``dispatcher db`` for the store."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from dispatcher.cli.common import ACTOR, celery_app, fail, load_sessions, load_settings
from dispatcher.errors import DispatcherError

if TYPE_CHECKING:
    from dispatcher.config import Settings

FINAL_STATES = ("completed", "cancelled")  # a sent campaign is watched on: its reports are due
# `create --json` shows the first rejected rows and their count: a million-row list may reject a quarter
# of its rows, tens of megabytes of JSON; the export lists every row with its reason.
SHOWN_REJECTIONS = 20
STANDALONE = typer.Option(
    "--standalone",
    help="This is the only machine: start even though the store is shared (PostgreSQL) while the broker "
    "or the limiter's Redis is a one-machine default (embedded, loopback).",
)


def _liveness_reader(settings: Settings) -> Any:
    """A function reading the heartbeats of this store's workers and beat (None without a Redis)."""
    import os

    from redis import Redis

    from dispatcher.operations.heartbeat import liveness_for
    from workers.app import DEFAULT_QUEUE, QUEUE_ENV

    queue = os.environ.get(QUEUE_ENV) or DEFAULT_QUEUE
    if settings.redis_url.startswith("memory://"):
        return lambda: None
    redis: Redis[Any] = Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    return lambda: liveness_for(redis, settings, queue)


def _refuse_lone_defaults(settings: Settings, standalone: bool) -> None:
    """A worker or beat on a shared store with a one-machine broker or limiter does not start."""
    from dispatcher.operations.deployment import refusal

    if not standalone and (reason := refusal(settings)):
        raise fail(ValueError(f"refusing to start: {reason}"))


def _queue_list(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise fail(ValueError(f"--queues {value!r} names no queue (give names separated by commas)"))
    return names


def _enqueue(settings: Settings, ids: list[int]) -> None:
    from workers.tasks import enqueue

    enqueue(ids, app=celery_app(settings))


def _parse_at(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise fail(
            ValueError(f"--at {value!r} is not an ISO-8601 time (e.g. 2026-11-22T09:00+08:00)")
        ) from None
    if at.tzinfo is None:
        from zoneinfo import ZoneInfo

        at = at.replace(tzinfo=ZoneInfo("Asia/Shanghai"))  # a marketer's clock is China time
    return at


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="The store (database).", no_args_is_help=True)
    campaign = typer.Typer(help="Create, run and inspect campaigns.", no_args_is_help=True)

    @db.command("upgrade")
    def db_upgrade() -> None:
        """Create or migrate the configured database to the latest schema."""
        # Imported here so `dispatcher --help` does not load SQLAlchemy and Alembic.
        from dispatcher.config import redact_url
        from dispatcher.store import upgrade

        settings = load_settings()
        before, after = upgrade(settings.database_url)
        where = redact_url(settings.database_url)
        if before is None:
            typer.echo(f"created the schema (revision {after}) in the empty database {where}")
        elif before != after:
            typer.echo(f"migrated the database from revision {before} to {after}: {where}")
        else:
            typer.echo(f"database is at the latest schema ({after}): {where}")

    @campaign.command("create")
    def create(
        file: Annotated[Path, typer.Argument(help="Contact list: xlsx, xlsm, xls, ods or csv.")],
        template: Annotated[
            list[str],
            typer.Option(
                "--template",
                help="Message template with {column} placeholders; give it again for an A/B test "
                "(variants A, B, ...).",
            ),
        ],
        account: Annotated[str, typer.Option("--account", help="Vendor account name from the config.")],
        split: Annotated[
            str | None,
            typer.Option("--split", help="A/B shares, one per --template, e.g. 70,30 (default: even)."),
        ] = None,
        fallback: Annotated[
            list[str] | None,
            typer.Option(
                "--fallback",
                help="Account to move to when the current one fails (no balance, bad password, "
                "blocked, or 'try later' past failover_after); repeatable, in order.",
            ),
        ] = None,
        at: Annotated[
            str | None, typer.Option("--at", help="Start time, ISO-8601 (China time if no zone).")
        ] = None,
        window: Annotated[str | None, typer.Option("--window", help="Send window HH:MM-HH:MM.")] = None,
        sheet: Annotated[str | None, typer.Option("--sheet", help="Sheet name or index.")] = None,
        phone_column: Annotated[str | None, typer.Option("--phone-column")] = None,
        name: Annotated[str | None, typer.Option("--name")] = None,
        transactional: Annotated[
            bool,
            typer.Option(
                "--transactional",
                help="Not marketing (an order, a password): neither capped nor counted by the frequency "
                "caps. Audited.",
            ),
        ] = False,
        each_number: Annotated[
            bool,
            typer.Option(
                "--each-number", help="A phone cell holding two numbers or more: send to each, not the first."
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Read, validate and plan a campaign (draft, or scheduled with --at)."""
        from dispatcher import campaigns
        from dispatcher.contacts.sandbox import read_first_if_unscanned
        from dispatcher.contacts.summary import summary

        settings = load_settings()
        sheet_arg: str | int | None = int(sheet) if sheet is not None and sheet.isdigit() else sheet
        try:
            read_first_if_unscanned(file, sheet_arg, settings)  # xls, xlsb, ods: in a limited child first
            created = campaigns.create(
                load_sessions(settings),
                settings,
                file,
                template[0],
                account,
                actor=ACTOR,
                start_at=_parse_at(at),
                window=window,
                sheet=sheet_arg,
                phone_column=phone_column,
                name=name,
                fallbacks=fallback or (),
                variant_templates=template[1:],
                split=split,
                transactional=transactional,
                each_number=each_number,
            )
        except DispatcherError as exc:
            raise fail(exc, as_json=as_json) from None
        data = {
            "id": created.campaign_id,
            "state": created.state.value,
            **summary(created.result, created.chunks, shown=SHOWN_REJECTIONS),
        }
        if data["rejected_count"] > len(data["rejected"]):
            data["rejected_export"] = f"dispatcher campaign export {created.campaign_id} FILE.xlsx"
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
        else:
            typer.echo(
                f"campaign {data['id']} ({data['state']}): {data['messages']} messages in {data['requests']} "
                f"requests, {data['rejected_count']} rows rejected"
            )
            for warning in data["warnings"]:
                typer.echo(f"warning: {warning}", err=True)

    def _act(action: str, campaign_id: int, **kwargs: Any) -> None:
        from dispatcher import campaigns

        settings = load_settings()
        sessions = load_sessions(settings)
        try:
            result = getattr(campaigns, action)(sessions, campaign_id, ACTOR, **kwargs)
        except DispatcherError as exc:
            raise fail(exc) from None
        if isinstance(result, list) and result:
            _enqueue(settings, result)
        count = len(result) if isinstance(result, list) else result
        typer.echo(f"campaign {campaign_id}: {action} done" + (f" ({count} chunks)" if count else ""))

    @campaign.command("start")
    def start(campaign_id: int) -> None:
        """Start sending now; refused when its accounts' balance cannot pay for it (price_per_segment)."""
        from dispatcher.cli.routing import balance_guard  # issue 14: the balance guard

        balance_guard(load_settings(), load_sessions, campaign_id, fail)
        _act("start", campaign_id)

    @campaign.command("pause")
    def pause(campaign_id: int) -> None:
        """Stop handing out chunks (within a second); chunks in flight finish."""
        _act("pause", campaign_id)

    @campaign.command("resume")
    def resume(campaign_id: int) -> None:
        _act("resume", campaign_id)

    @campaign.command("cancel")
    def cancel(campaign_id: int) -> None:
        """Send nothing more; unsent recipients are marked cancelled."""
        _act("cancel", campaign_id)

    @campaign.command("retry")
    def retry(
        campaign_id: int,
        include_unknown: Annotated[
            bool, typer.Option("--include-unknown", help="Also re-send unknown chunks.")
        ] = False,
    ) -> None:
        """Re-send failed chunks whose error allows it (never recipients already accepted or delivered).
        A paused campaign stays paused: they go when it is resumed. A cancelled one cannot be retried."""
        _act("retry", campaign_id, include_unknown=include_unknown)

    @campaign.command("list")
    def list_(
        as_json: Annotated[bool, typer.Option("--json")] = False,
        proofs: Annotated[bool, typer.Option("--proofs", help="Show the proofs (样张) too.")] = False,
    ) -> None:
        """The campaigns, newest last; proofs only with --proofs. Times in China time."""
        from sqlalchemy import select

        from dispatcher.i18n import CHINA
        from dispatcher.store import Campaign

        sessions = load_sessions(load_settings())
        query = select(Campaign).order_by(Campaign.id)
        if not proofs:
            query = query.where(Campaign.proof.is_(False))
        with sessions() as session:
            rows = session.execute(query).scalars().all()
            data: list[dict[str, Any]] = [
                {"id": c.id, "name": c.name, "state": c.state, "account": c.account, "vendor": c.vendor,
                 "start_at": c.start_at.isoformat() if c.start_at else None, "proof": c.proof}
                for c in rows
            ]  # fmt: skip
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        table = Table("id", "name", "state", "account", "vendor", "start (China time)")
        for c in data:
            start = (
                datetime.fromisoformat(c["start_at"]).astimezone(CHINA).strftime("%Y-%m-%d %H:%M:%S")
                if c["start_at"]
                else ""
            )
            name = f"{c['name']} (proof)" if c["proof"] else c["name"]
            table.add_row(str(c["id"]), name, c["state"], c["account"], c["vendor"], start)
        Console().print(table)

    @campaign.command("status")
    def status(
        campaign_id: int,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        watch: Annotated[
            bool, typer.Option("--watch", help="Live progress until the campaign ends.")
        ] = False,
    ) -> None:
        from dispatcher import campaigns

        settings = load_settings()
        sessions = load_sessions(settings)
        liveness = _liveness_reader(settings)

        def read() -> dict[str, Any]:
            with sessions() as session:
                try:
                    return campaigns.status(session, campaign_id, liveness())
                except DispatcherError as exc:
                    raise fail(exc, as_json=as_json) from None

        data = read()
        if watch:
            _watch(read, data)
            data = read()
        if as_json:
            typer.echo(json.dumps(data, ensure_ascii=False))
            return
        table = Table("state", "recipients", title=f"campaign {data['id']} · {data['state']}")
        for key in ("recipients", "queued", "sending", "accepted", "failed", "unknown", "delivered",
                    "undelivered", "expired", "cancelled", "capped", "rejected"):  # fmt: skip
            table.add_row(key, str(data.get(key, 0)))
        console = Console()
        console.print(table)
        if data.get("fallbacks") or data.get("failovers"):  # the route: each account's share
            console.print(_accounts_table(data["accounts"]))
        if data.get("variants"):
            console.print(_variants_table(data["variants"]))
            if "variant_test" in data:
                typer.echo(_variant_test_words(data["variant_test"]))
        if words := _waiting(data):
            typer.echo(words)
        if data.get("set_aside"):
            typer.echo(f"{data['set_aside']} report/reply bodies set aside (dispatcher reports set-aside)")

    @app.command("worker")
    def worker(
        concurrency: Annotated[int, typer.Option("--concurrency", "-c")] = 4,
        loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
        queues: Annotated[
            str | None,
            typer.Option(
                "--queues",
                "-Q",
                help="Queues to consume, separated by commas. Default: the send queue and the beat's "
                "queue ($DISPATCHER_QUEUE and $DISPATCHER_QUEUE.beat: dispatcher,dispatcher.beat).",
            ),
        ] = None,
        standalone: Annotated[bool, STANDALONE] = False,
    ) -> None:
        """Run a Celery worker that sends chunks (as many as you like, on any machines)."""
        from workers.app import worker_queues

        settings = load_settings()
        _refuse_lone_defaults(settings, standalone)
        load_sessions(settings)
        celery = celery_app(settings)
        names = _queue_list(queues) if queues is not None else worker_queues(celery.conf.task_default_queue)
        celery.worker_main(
            [
                "worker",
                f"--concurrency={concurrency}",
                f"--loglevel={loglevel}",
                f"--queues={','.join(names)}",
            ]
        )

    @app.command("beat")
    def beat(
        loglevel: Annotated[str, typer.Option("--loglevel", "-l")] = "INFO",
        schedule: Annotated[
            Path | None,
            typer.Option(
                "--schedule",
                "-s",
                help="The beat's state file. Default: beside a SQLite store, else in the temporary "
                "directory, named after the queue (dispatcher-beat-schedule).",
            ),
        ] = None,
        standalone: Annotated[bool, STANDALONE] = False,
    ) -> None:
        """Run the one scheduler: launches due campaigns, sweeps dead workers, pulls reports. Its tasks
        go to the beat queue ($DISPATCHER_QUEUE.beat), which `dispatcher worker` consumes."""
        from dispatcher.config import beat_schedule_path
        from dispatcher.operations.heartbeat import BEAT
        from workers.app import beat_queue
        from workers.liveness import TickingScheduler, beat_last_tick, start_heartbeat

        settings = load_settings()
        _refuse_lone_defaults(settings, standalone)
        load_sessions(settings)
        celery = celery_app(settings)
        path = schedule or beat_schedule_path(settings.database_url, celery.conf.task_default_queue)
        TickingScheduler.last_tick = time.monotonic()  # from its start: a loop that never ticks goes stale
        queues = [beat_queue(celery.conf.task_default_queue)]
        beater = start_heartbeat(settings, BEAT, queues, last_tick=beat_last_tick)
        try:
            celery.Beat(
                loglevel=loglevel,
                schedule=str(path),
                scheduler=TickingScheduler,
                max_interval=settings.heartbeat_seconds,
            ).run()
        finally:
            if beater is not None:
                beater.stop()

    from dispatcher.cli.results import campaign_export

    campaign.command("export")(campaign_export)
    app.add_typer(db, name="db")
    app.add_typer(campaign, name="campaign")


_ACCOUNT_COLUMNS = ("recipients", "accepted", "delivered", "undelivered", "failed", "unknown", "queued")
_VARIANT_COLUMNS = (
    "recipients",
    "accepted",
    "delivered",
    "delivery_rate",
    "replies",
    "reply_rate",
    "opt_outs",
)


def _accounts_table(accounts: dict[str, dict[str, int]]) -> Table:
    """The accounts of a campaign's route, in order (those it left, its own, its fallbacks)."""
    table = Table("account", *_ACCOUNT_COLUMNS, title="by account")
    for name, figures in accounts.items():
        table.add_row(name, *(str(figures.get(key, 0)) for key in _ACCOUNT_COLUMNS))
    return table


def _variants_table(variants: dict[str, dict[str, Any]]) -> Table:
    table = Table("variant", *_VARIANT_COLUMNS, title="by variant")
    for name, figures in variants.items():
        cells = (figures.get(key) for key in _VARIANT_COLUMNS)
        table.add_row(name, *("-" if value is None else str(value) for value in cells))
    return table


def _variant_test_words(test: dict[str, Any]) -> str:
    first, second = test["compared"]
    if test["p_value"] is None:
        return f"{first} vs {second}: no {test['metric']} to compare yet"
    verdict = "a significant difference" if test["significant"] else "no significant difference"
    return (
        f"{first} vs {second}, {test['metric']}: z = {test['z']}, p = {test['p_value']}: "
        f"{verdict} at {test['alpha']}"
    )


def _waiting(data: dict[str, Any]) -> str:
    """What the campaign waits for, in words (English, times in China time), or ''."""
    from dispatcher import i18n, labels

    with i18n.use("en"):
        return labels.waiting_text(data) or ""


class _Elapsed(ProgressColumn):
    """Time since the watch began, still counting once every message is sent and reports are awaited
    (rich's own column stops when the bar is full)."""

    def render(self, task: Task) -> Text:
        seconds = int(time.monotonic() - task.fields["started"])
        return Text(str(timedelta(seconds=seconds)), style="progress.elapsed")


def watch_columns() -> tuple[ProgressColumn, ...]:
    """One line that fits 80 columns for a million recipients, the state first and never cut; what the
    campaign waits for goes on a line of its own."""
    return (
        TextColumn("[bold]#{task.fields[cid]}[/] {task.fields[state]}"),
        BarColumn(bar_width=10),
        TaskProgressColumn(),
        TextColumn("{task.fields[delivered]} delivered · {task.fields[failed]} failed"),
        _Elapsed(),
    )


def _watch(read: Any, data: dict[str, Any]) -> None:

    done_keys = (
        "accepted",
        "failed",
        "unknown",
        "delivered",
        "undelivered",
        "expired",
        "cancelled",
        "capped",
    )
    said = ""
    with Progress(*watch_columns()) as progress:
        task = progress.add_task("send", total=data["recipients"], cid=data["id"], state=data["state"],
                                 delivered=0, failed=0, started=time.monotonic())  # fmt: skip
        while True:
            words = _waiting(data)
            if words and words != said:
                progress.console.print(words, highlight=False)
            said = words
            progress.update(
                task,
                completed=sum(data.get(k, 0) for k in done_keys),
                state=data["state"],
                delivered=data.get("delivered", 0),
                failed=data.get("failed", 0),
            )
            if data["state"] in FINAL_STATES:
                break
            time.sleep(1.0)
            data = read()

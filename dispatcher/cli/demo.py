"""``dispatcher demo``: the newcomer's first command (its parts: ``dispatcher.cli.demo_setup``)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

SETTLED = ("delivered", "undelivered", "failed", "unknown", "expired")


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        rows: Annotated[int, typer.Option("--rows", help="Contacts in the generated list.")] = 3000,
        broker: Annotated[
            str | None,
            typer.Option("--broker", help="Use this broker (redis://...) instead of the embedded one."),
        ] = None,
        workdir: Annotated[
            Path,
            typer.Option(
                "--dir",
                help="Where the demo writes its files: a new or empty directory, or one an earlier demo made "
                "(emptied first). Any other directory is refused.",
            ),
        ] = Path("dispatcher-demo"),
        timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for reports.")] = 150.0,
    ) -> None:
        """Run a real campaign for two vendors against the built-in simulator; no server needed."""
        run_demo(rows=rows, broker=broker, workdir=workdir.resolve(), timeout=timeout)

    @app.command("sample")
    def sample(
        file: Annotated[Path, typer.Argument(help="Where to write the list (.xlsx); never overwritten.")],
        rows: Annotated[
            int, typer.Option("--rows", min=1, max=1_000_000, help="Contacts in the list.")
        ] = 3000,
    ) -> None:
        """Write a sample contact list (the demo's: a title row, numbers in several shapes, some bad rows)."""
        write_sample_list(file, rows)


def write_sample_list(file: Path, rows: int) -> None:
    from dispatcher.cli.demo_setup import TEMPLATE, write_sample

    if file.suffix.lower() != ".xlsx":
        typer.echo(f"error: {file}: the sample list is an .xlsx file", err=True)
        raise typer.Exit(2)
    if file.exists():
        typer.echo(f"error: {file} exists: choose another name (nothing was overwritten)", err=True)
        raise typer.Exit(2)
    if not file.parent.is_dir():  # before openpyxl starts a workbook it could not save
        typer.echo(f"error: {file.parent} is not a directory", err=True)
        raise typer.Exit(2)
    try:
        written = write_sample(file, rows)
    except OSError as exc:
        typer.echo(f"error: {file}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{file}: {written.rows:,} contacts ({written.bad_rows:,} of them bad on purpose), sheet 会员名单, "
        f"columns 序号, 姓名, 手机号码, 城市, 优惠券; e.g. --template '{TEMPLATE}'"
    )


MARKER = ".dispatcher-demo"  # a directory holding it was made by the demo: the demo may empty it


def prepare_workdir(workdir: Path) -> None:
    """An empty ``workdir`` for the demo. One the demo made before (its marker inside) is emptied; any
    other directory that holds anything is refused, never deleted."""
    if workdir.exists() and not workdir.is_dir():
        typer.echo(f"error: --dir {workdir} is a file, not a directory", err=True)
        raise typer.Exit(2)
    if workdir.is_dir() and any(workdir.iterdir()):
        if not (workdir / MARKER).is_file():
            typer.echo(
                f"error: --dir {workdir} is not empty and was not made by `dispatcher demo`: "
                "choose a new or empty directory (nothing was deleted)",
                err=True,
            )
            raise typer.Exit(2)
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKER).write_text("made by `dispatcher demo`: it empties this directory on its next run\n")


def run_demo(*, rows: int, broker: str | None, workdir: Path, timeout: float) -> None:
    from dispatcher import campaigns, runtime
    from dispatcher.cli import demo_setup as demo
    from dispatcher.config import Settings
    from dispatcher.simulator import SimulatorConfig, run_simulator
    from dispatcher.store import upgrade
    from workers import tasks
    from workers.app import make_celery

    console = Console()
    prepare_workdir(workdir)
    sample = demo.write_sample(workdir / "contacts.xlsx", rows)
    console.print(f"[bold]Sample list[/]: {sample.path} ({sample.rows} rows, {sample.bad_rows} of them bad)")

    with run_simulator(SimulatorConfig(report_delay=1.0, deliver_ratio=0.93, seed=2026)) as sim:
        console.print(f"[bold]Simulator[/]: {sim.base_url} (yunxin and trigger, account demo)")
        (workdir / "dispatcher.toml").write_text(demo.demo_config(sim.base_url), encoding="utf-8")
        env = demo.environment(workdir, broker)
        os.environ.update(env)
        runtime.reset()
        settings = Settings.load()
        upgrade(settings.database_url)
        sessions = runtime.current().sessions
        app = make_celery(settings.broker_url, redis_url=None)
        tasks.register(app)

        created = {}
        for vendor in demo.DEMO_VENDORS:
            result = campaigns.create(
                sessions,
                settings,
                sample.path,
                demo.TEMPLATE,
                f"demo-{vendor}",
                actor="demo",
                name=f"demo {vendor}",
            )
            created[vendor] = result.campaign_id
            console.print(
                f"campaign {result.campaign_id} ({vendor}): {len(result.result.messages)} messages in "
                f"{len(result.chunks)} requests, {len(result.result.rejected)} rows rejected"
            )
        worker = demo.start_worker(env, workdir / "worker.log")
        try:
            for campaign_id in created.values():
                tasks.enqueue(campaigns.start(sessions, campaign_id, "demo"), app=app)
            finished = _watch(console, sessions, created, app, timeout)
        finally:
            worker.terminate()
            worker.wait(timeout=30)
        _report(console, sessions, created, workdir)
        if not finished:
            console.print(
                "[yellow]Some reports did not arrive in time; the table shows where things stand.[/]"
            )


def _status(sessions: Any, campaign_id: int) -> dict[str, Any]:
    from dispatcher import campaigns

    with sessions() as session:
        return campaigns.status(session, campaign_id)


def _watch(console: Console, sessions: Any, created: dict[str, int], app: Any, timeout: float) -> bool:
    from dispatcher import runtime
    from dispatcher.cli import demo_setup as demo
    from dispatcher.results import cycle
    from workers.tasks import run_tick

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("accepted {task.fields[accepted]} · delivered {task.fields[delivered]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bars = {
            vendor: progress.add_task(
                vendor, total=_status(sessions, cid)["recipients"], accepted=0, delivered=0
            )
            for vendor, cid in created.items()
        }

        last_pull = 0.0

        def step() -> None:
            nonlocal last_pull
            run_tick(app)  # the demo is its own beat: launch, sweep, complete ...
            if time.monotonic() - last_pull > 2.0:  # ... and pull reports, as the results beat does
                cycle.run(runtime.current())
                last_pull = time.monotonic()
            for vendor, cid in created.items():
                s = _status(sessions, cid)
                progress.update(
                    bars[vendor],
                    completed=sum(s.get(k, 0) for k in SETTLED),
                    accepted=s["accepted"] + s["delivered"] + s["undelivered"],
                    delivered=s["delivered"],
                )

        def done() -> bool:
            return all(
                (s := _status(sessions, cid))["state"] == "completed"
                and s["queued"] == s["sending"] == s["accepted"] == 0
                for cid in created.values()
            )

        return demo.wait_until(done, timeout, step)


def _report(console: Console, sessions: Any, created: dict[str, int], workdir: Path) -> None:
    from dispatcher.results import campaign_export

    table = Table("vendor", "campaign", "rows", "delivered", "undelivered", "failed", "unknown", "rejected")
    written: list[Path] = []
    for vendor, cid in created.items():
        s = _status(sessions, cid)
        path = workdir / f"campaign-{cid}-{vendor}.xlsx"
        with sessions() as session:
            campaign_export.export(session, cid, path)
        written.append(path)
        table.add_row(
            vendor, str(cid), str(s["rows"]), str(s["delivered"]), str(s["undelivered"]), str(s["failed"]),
            str(s["unknown"]), str(s["rejected"]),
        )  # fmt: skip
    console.print(table)
    for path in written:  # full paths on their own lines: a narrow terminal would truncate a column
        console.print(f"export written: {path}", soft_wrap=True)

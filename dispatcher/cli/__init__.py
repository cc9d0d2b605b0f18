"""The ``dispatcher`` command. Each area registers its commands from its own module."""

from __future__ import annotations

import typer

from dispatcher.cli import campaign, check, demo, keywords, results, schedule, simulate, vendors, web

app = typer.Typer(
    name="dispatcher",
    help="Bulk SMS campaigns for Chinese SMS gateways.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (vendors, simulate, check, campaign, schedule, results, keywords, web, demo):
    module.register(app)

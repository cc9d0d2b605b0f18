"""``dispatcher web`` (the web app under uvicorn) and ``dispatcher user add|list|token`` (who may sign in)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import secrets
import sys
from typing import Annotated, Any
from urllib.parse import unquote_plus

import typer

from dispatcher.cli.common import fail, load_sessions, load_settings
from dispatcher.errors import DispatcherError

_QUERY_PARAM = re.compile(r"([?&;])([^=&;\s]*)=([^&;\s]*)")
_SECRET_NAME = re.compile(r"token|secret|passw|pwd|key|sign|auth", re.I)


def _redact(match: re.Match[str]) -> str:
    # The name as the app reads it, however it was spelled: ``t%6Fken`` is ``token`` to the receiver.
    name = match.group(2)
    for _ in range(3):
        name = unquote_plus(name)
    return f"{match.group(1)}{match.group(2)}=***" if _SECRET_NAME.search(name) else match.group(0)


class RedactQuerySecrets(logging.Filter):
    """Push receivers take their secret in the URL (the vendors' contract): keep it out of access logs.
    Every parameter whose name, decoded, looks like a secret is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _QUERY_PARAM.sub(_redact, a) if isinstance(a, str) and "=" in a else a for a in record.args
            )
        return True


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging with :class:`RedactQuerySecrets` on the access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact"] = {"()": f"{__name__}.RedactQuerySecrets"}
    config["handlers"]["access"]["filters"] = ["redact"]
    return config


def register(app: typer.Typer) -> None:
    user = typer.Typer(help="Users of the web app and their roles.", no_args_is_help=True)

    @app.command("web")
    def web(
        host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port")] = 8000,
        max_upload_mb: Annotated[int, typer.Option("--max-upload-mb", help="Upload size limit.")] = 50,
        https_only: Annotated[
            bool | None,
            typer.Option(
                "--https-only/--no-https-only",
                help="Session cookie only over HTTPS (Secure). Default: when DISPATCHER_PUBLIC_URL is https.",
            ),
        ] = None,
        forwarded_allow_ips: Annotated[
            str | None,
            typer.Option(
                "--forwarded-allow-ips",
                help="Proxies (comma-separated IPs or networks) whose X-Forwarded-For/-Proto are believed; "
                "default $FORWARDED_ALLOW_IPS or 127.0.0.1,::1. Sign-in throttling counts per client address: "
                "never '*', with which a client picks its own address.",
            ),
        ] = None,
    ) -> None:
        """Run the web app: pages for marketing staff, the JSON API (/docs), vendor push receivers."""
        import uvicorn

        from dispatcher.web import create_app
        from dispatcher.web.auth import check_secret_key
        from dispatcher.web.server import server_options

        settings = load_settings()
        if not settings.secret_key:
            # Unguessable, but sessions then die with the process and cannot be shared by several
            # web processes: production sets DISPATCHER_SECRET_KEY (compose refuses to start without).
            typer.echo(
                "warning: no DISPATCHER_SECRET_KEY / secret_key set; using a random one for this run",
                err=True,
            )
            settings = dataclasses.replace(settings, secret_key=secrets.token_urlsafe(32))
        try:
            check_secret_key(settings.secret_key)
        except DispatcherError as exc:
            raise fail(exc) from None
        sessions = load_sessions(settings)
        app_ = create_app(
            settings, sessions=sessions, max_upload_bytes=max_upload_mb * 1024 * 1024, https_only=https_only
        )
        uvicorn.run(
            app_,
            host=host,
            port=port,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
            log_config=access_log_config(),
            **server_options(settings, forwarded_allow_ips),  # slow and greedy clients
        )

    @user.command("add")
    def add(
        name: str,
        role: Annotated[str, typer.Option("--role", help="viewer, sender or admin")] = "viewer",
        password_stdin: Annotated[
            bool, typer.Option("--password-stdin", help="Read the password from standard input.")
        ] = False,
    ) -> None:
        """Add a user who may sign in (the password is asked for, never given on the command line)."""
        from dispatcher.web.auth import add_user, check_new_user

        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        try:
            check_new_user(name, password, role)
            with load_sessions(load_settings())() as session:
                add_user(session, name, password, role, actor="cli")
        except DispatcherError as exc:
            raise fail(exc) from None
        typer.echo(f"user {name} added ({role})")

    @user.command("list")
    def list_() -> None:
        from sqlalchemy import select

        from dispatcher.store import User

        with load_sessions(load_settings())() as session:
            for u in session.execute(select(User).order_by(User.name)).scalars():
                typer.echo(f"{u.name}\t{u.role}")

    @user.command("token")
    def token(
        name: str,
        revoke: Annotated[bool, typer.Option("--revoke", help="Revoke the user's token instead.")] = False,
    ) -> None:
        """Print a new API token for NAME (replacing any previous one), or revoke it.

        Scripts send it as ``Authorization: Bearer <token>``. Only its hash is stored: keep it now.
        """
        from dispatcher.web.auth import issue_token, revoke_tokens

        try:
            with load_sessions(load_settings())() as session:
                if revoke:
                    revoked = revoke_tokens(session, name, actor="cli")
                    typer.echo(f"{revoked} token(s) of {name} revoked", err=True)
                    return
                typer.echo(issue_token(session, name, actor="cli"))
        except DispatcherError as exc:
            raise fail(exc) from None

    app.add_typer(user, name="user")

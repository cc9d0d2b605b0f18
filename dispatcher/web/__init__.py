"""The web app: pages for marketing staff, a JSON API under ``/api/``, and the vendors' push receivers.

    create_app(settings)        # uvicorn.run(create_app(settings)) or ``dispatcher web``

Server-rendered HTML (Jinja2) with a little inline JavaScript for live progress; no build step.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from dispatcher.config import Settings
from dispatcher.errors import ConfigError, DispatcherError, StateError, StoreError
from dispatcher.web.actions import Forbidden
from dispatcher.web.context import DEFAULT_MAX_UPLOAD, WebContext
from dispatcher.web.deps import CsrfFailed, LoginRequired, render, session_user

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.orm import Session, sessionmaker

SESSION_MAX_AGE_S = 12 * 3600

__all__ = ["create_app"]


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    celery: Celery | None = None,
    upload_dir: Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    https_only: bool = False,
    process_push: bool = True,
) -> FastAPI:
    """The app. ``settings.secret_key`` signs the session cookies: without one, nothing starts."""
    if not settings.secret_key:
        raise ConfigError("the web app needs secret_key (DISPATCHER_SECRET_KEY) to sign session cookies")
    if sessions is None:
        from dispatcher.store import make_engine, session_factory

        sessions = session_factory(make_engine(settings.database_url))
    if celery is None:
        from dispatcher.cli.campaign import celery_app

        celery = celery_app(settings)
    if upload_dir is None:
        import tempfile

        upload_dir = Path(tempfile.gettempdir()) / "dispatcher-uploads"
    ctx = WebContext(settings, sessions, celery, upload_dir, max_upload_bytes, process_push)

    from dispatcher.web import admin, api, pages, push

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = FastAPI(
        lifespan=lifespan,
        title="SMS dispatcher",
        summary="Bulk SMS campaigns for Chinese SMS gateways: JSON API and vendor push receivers.",
        version="0.1.0",
    )
    app.state.ctx = ctx
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie="dispatcher_session",
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=https_only,
    )
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.include_router(api.router)
    app.include_router(push.router)
    _handlers(app)
    return app


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(("/api/", "/push/"))


def _handlers(app: FastAPI) -> None:
    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(CsrfFailed)
    async def csrf_failed(request: Request, exc: CsrfFailed) -> Response:
        if _is_api(request):
            return JSONResponse({"detail": "CSRF token missing or wrong"}, status_code=403)
        return HTMLResponse(
            "<h1>403 - the form has expired</h1><p>Go back, reload the page and try again.</p>",
            status_code=403,
        )

    @app.exception_handler(DispatcherError)
    async def dispatcher_error(request: Request, exc: DispatcherError) -> Response:
        status = 400
        if isinstance(exc, Forbidden):
            status = 403
        elif isinstance(exc, StateError):
            status = 409
        elif isinstance(exc, StoreError) and str(exc).startswith("no "):
            status = 404
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        user = session_user(request, app.state.ctx)
        return render(request, "error.html", user, status_code=status, status=status, message=str(exc))

"""The web app: pages for marketing staff, a JSON API under ``/api/``, and the vendors' push receivers.

    create_app(settings)        # uvicorn.run(create_app(settings)) or ``dispatcher web``

Server-rendered HTML (Jinja2) with a little JavaScript (``static/*.js``: the pages' Content-Security-
Policy allows no inline script) for live progress; no build step. The security model (sessions, tokens,
throttling, the sandbox that reads uploads, headers) is in SECURITY.md.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.resources
import re
from collections.abc import AsyncIterator
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from dispatcher.config import Settings
from dispatcher.contacts.sandbox import Busy, Sandbox, preload
from dispatcher.errors import DispatcherError, NotFoundError, StateError
from dispatcher.i18n import gettext as _
from dispatcher.keys import DEFAULT_KEYS, KeySpace
from dispatcher.labels import describe
from dispatcher.web.actions import Forbidden
from dispatcher.web.auth import SESSION_MAX_AGE_S, check_secret_key
from dispatcher.web.context import DEFAULT_MAX_UPLOAD, EXPORTS_AT_ONCE, WebContext
from dispatcher.web.deps import (
    ApiUser,
    CsrfFailed,
    LoginRequired,
    PageUser,
    Unavailable,
    render,
    session_user,
)
from dispatcher.web.gate import UploadGate
from dispatcher.web.language import LanguageMiddleware
from dispatcher.web.security import SecurityMiddleware

if TYPE_CHECKING:
    from celery import Celery
    from sqlalchemy.orm import Session, sessionmaker

__all__ = ["create_app"]

SWAGGER_FILES = Path(str(importlib.resources.files("fastapi_offline") / "static"))


def create_app(
    settings: Settings,
    *,
    sessions: sessionmaker[Session] | None = None,
    celery: Celery | None = None,
    upload_dir: Path | None = None,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD,
    https_only: bool | None = None,
    process_push: bool = True,
    keys: KeySpace = DEFAULT_KEYS,
) -> FastAPI:
    """The app. ``settings.secret_key`` signs the session cookies: without a strong one, nothing starts.
    Session cookies are ``Secure`` when ``https_only``, by default when ``public_url`` is https."""
    secret_key = check_secret_key(settings.secret_key)
    if https_only is None:
        https_only = settings.https
    if sessions is None:
        from dispatcher.store import make_engine, session_factory

        sessions = session_factory(make_engine(settings.database_url))
    if celery is None:
        from workers.tasks import celery_app

        celery = celery_app(settings)
    if upload_dir is None and settings.upload_dir:
        upload_dir = Path(settings.upload_dir)  # shared by every web process (several behind a balancer)
    if upload_dir is None:
        import tempfile

        upload_dir = Path(tempfile.gettempdir()) / "dispatcher-uploads"
    # What the sandbox's children run, imported once.
    preload("dispatcher.web.parsing", "dispatcher.results.campaign_export")
    ctx = WebContext(
        settings,
        sessions,
        celery,
        upload_dir,
        max_upload_bytes,
        process_push,
        keys=keys,
        sandbox=Sandbox(settings.parse_memory_mb, timeout_s=settings.parse_timeout_s),
        list_sandbox=Sandbox(
            settings.parse_memory_mb, workers=EXPORTS_AT_ONCE, timeout_s=settings.parse_timeout_s
        ),
    )

    from dispatcher.web import admin, api, operations, pages, push, schedules

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        ctx.close()

    app = FastAPI(
        lifespan=lifespan,
        title="SMS dispatcher",
        summary="Bulk SMS campaigns for Chinese SMS gateways: JSON API and vendor push receivers.",
        version="0.1.0",
        docs_url=None,  # served below, to signed-in users only
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ctx = ctx
    app.add_middleware(UploadGate, ctx=ctx)  # inside the session middleware: it reads the cookie's session
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="dispatcher_session",
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",
        https_only=https_only,
    )
    app.add_middleware(
        SecurityMiddleware,
        public_url=settings.public_url,
        https=https_only,
        max_upload_bytes=max_upload_bytes,
        body_timeout_s=settings.body_timeout_s,
        body_deadline_s=settings.body_deadline_s,
    )
    app.add_middleware(LanguageMiddleware)  # outermost: every response, error pages too, in one language
    # Swagger UI's own files (fastapi-offline ships them): /docs needs no internet. Mounted before
    # /static, which would otherwise take the path.
    app.mount("/static/docs", StaticFiles(directory=str(SWAGGER_FILES)), name="swagger")
    app.mount("/static", StaticFiles(directory=str(Path(__file__).parent / "static")), name="static")
    app.include_router(admin.router)
    app.include_router(pages.router)
    app.include_router(schedules.router)
    app.include_router(api.router)
    app.include_router(push.router)
    app.include_router(operations.router)
    _docs(app)
    _handlers(app)
    return app


def _docs(app: FastAPI) -> None:
    """OpenAPI and Swagger UI for signed-in users (the API's shape is no business of strangers)."""

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: ApiUser) -> dict[str, Any]:
        return app.openapi()

    @app.get("/docs", include_in_schema=False)
    def docs(user: PageUser) -> Response:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - API",
            swagger_js_url="/static/docs/swagger-ui-bundle.js",
            swagger_css_url="/static/docs/swagger-ui.css",
            swagger_favicon_url="/static/docs/favicon.png",
        )
        html = bytes(page.body).decode()
        # Swagger UI starts with one inline script: allowed by its hash, nothing else inline. Every file
        # is this app's own: no CDN.
        inline = re.findall(r"<script>(.*?)</script>", html, re.S)
        hashes = " ".join(
            "'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'"
            for code in inline
        )
        csp = (
            f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; object-src 'none'"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})


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
        title, advice = _("403 - the form has expired"), _("Go back, reload the page and try again.")
        return HTMLResponse(f"<h1>{escape(title)}</h1><p>{escape(advice)}</p>", status_code=403)

    @app.exception_handler(DispatcherError)
    async def dispatcher_error(request: Request, exc: DispatcherError) -> Response:
        status = 400
        if isinstance(exc, Forbidden):
            status = 403
        elif isinstance(exc, Unavailable | Busy):
            status = 503
        elif isinstance(exc, StateError):
            status = 409
        elif isinstance(exc, NotFoundError):
            status = 404
        if _is_api(request):
            return JSONResponse({"detail": str(exc)}, status_code=status)
        user = session_user(request, app.state.ctx)
        return render(request, "error.html", user, status_code=status, status=status, message=describe(exc))

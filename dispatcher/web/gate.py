"""Who sends an upload is checked before its body is read.

FastAPI parses a multipart body (spooling it to disk) before any dependency runs, so without this a
stranger could make the server receive and store fifty megabytes per request before being told to sign
in. On the upload routes this middleware (inside the session middleware, which decodes the cookie)
identifies the sender as the route will, from the headers alone: a signed-in session for the page,
a session, bearer token or (throttled) HTTP Basic for the API, and a role that may upload. Anyone else
is answered at once and the body is never read. The route checks again, as every route does.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from dispatcher.store import Role
from dispatcher.web.context import WebContext
from dispatcher.web.deps import api_user, session_user
from dispatcher.web.security import ASGIApp, Receive, Scope, Send

PAGE_UPLOADS = frozenset({"/uploads"})
API_UPLOADS = frozenset({"/api/campaigns", "/api/campaigns/preview"})


class UploadGate:
    def __init__(self, app: ASGIApp, *, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and scope["method"] == "POST" and path in PAGE_UPLOADS | API_UPLOADS:
            refusal = await anyio.to_thread.run_sync(self._refusal, Request(scope), path in API_UPLOADS)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request, api: bool) -> Response | None:
        """None when the request's sender may upload; otherwise the answer (nothing read yet)."""
        if not api:
            user = session_user(request, self.ctx)
            if user is None:
                return RedirectResponse("/login", status_code=303)
        else:
            try:
                user = api_user(request, self.ctx)
            except HTTPException as exc:
                headers: Any = exc.headers
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
        if not user.can(Role.SENDER):
            return JSONResponse(
                {"detail": f"uploading a contact list needs the sender role (you are {user.role.value})"},
                status_code=403,
            )
        return None

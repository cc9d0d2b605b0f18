"""Who sends a body is checked before it is read.

FastAPI parses a multipart body (spooling it to disk) before any dependency runs, so without this a
stranger could make the server receive and store fifty megabytes per request before being told to sign
in. For every request with a body but the sign-in form and the vendors' push receivers (which have
their own token), this middleware (inside the session middleware, which decodes the cookie) identifies
the sender as the route will, from the headers alone: a signed-in session for a page, a session,
bearer token or (throttled) HTTP Basic for the API; on the upload routes, a role that may upload too.
Anyone else is answered at once and the body is never read. The pages that read an upload
(``/uploads/TOKEN/preview`` and the like) want the sender role before their form is read, too.
The user found is handed to the route (:data:`GATE_USER`): its dependency checks the same credentials
again only when the gate did not (an HTTP Basic password costs a scrypt each time it is checked).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from dispatcher.store import Role
from dispatcher.web.context import WebContext
from dispatcher.web.deps import GATE_USER, api_user, session_user
from dispatcher.web.security import ASGIApp, Receive, Scope, Send

UPLOADS = frozenset({"/uploads", "/api/campaigns", "/api/campaigns/preview"})
PUBLIC = frozenset({"/login"})  # a stranger's only form (its body is kept small: security.SMALL_BODY)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class UploadGate:
    def __init__(self, app: ASGIApp, *, ctx: WebContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and path not in PUBLIC
            and not path.startswith(("/push/", "/static/"))
        ):
            refusal = await anyio.to_thread.run_sync(self._refusal, Request(scope), scope, path)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _refusal(self, request: Request, scope: Scope, path: str) -> Response | None:
        """None when the request's sender may send it; otherwise the answer (nothing read yet)."""
        if not path.startswith("/api/"):
            user = session_user(request, self.ctx)
            if user is None:
                return RedirectResponse("/login", status_code=303)
        else:
            try:
                user = api_user(request, self.ctx)
            except HTTPException as exc:
                headers: Any = exc.headers
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
        if (path in UPLOADS or path.startswith("/uploads/")) and not user.can(Role.SENDER):
            return JSONResponse(
                {"detail": f"uploading a contact list needs the sender role (you are {user.role.value})"},
                status_code=403,
            )
        scope.setdefault("state", {})[GATE_USER] = user
        return None

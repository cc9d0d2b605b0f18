"""The operators' view: ``GET /metrics`` (Prometheus) and the 系统状态 page (``dispatcher doctor``'s checks).

``/metrics`` answers a scraper on this machine (the socket peer, the ``Host`` header both loopback, and no
forwarding header: a request relayed by a proxy on this machine is not a local one) or one that sends
``Authorization: Bearer <metrics_token>``; anyone else gets 404, as if there were nothing there.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from dispatcher.i18n import N_
from dispatcher.labels import amount, say
from dispatcher.store import Role
from dispatcher.web import actions
from dispatcher.web.deps import Ctx, PageUser, render

if TYPE_CHECKING:
    from dispatcher.operations.doctor import Check

router = APIRouter(include_in_schema=False)
FORWARDING = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _loopback(address: str | None) -> bool:
    """A loopback address, an IPv4-mapped one too (``::ffff:127.0.0.1``: how a dual-stack socket names
    an IPv4 peer; ``ipaddress`` does not count it as loopback)."""
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def metrics_allowed(request: Request, token: str | None) -> bool:
    """A local scraper, or the metrics token (compared in constant time)."""
    header = request.headers.get("authorization", "")
    if token and header.lower().startswith("bearer "):
        return hmac.compare_digest(header[7:].strip().encode(), token.encode())
    host = request.url.hostname or ""  # from the Host header
    peer = request.client.host if request.client else None
    local = _loopback(peer) and (host == "localhost" or _loopback(host))
    return local and not any(name in request.headers for name in FORWARDING)


@router.get("/metrics")
async def metrics(request: Request, ctx: Ctx) -> Response:
    if not metrics_allowed(request, ctx.settings.metrics_token):
        return PlainTextResponse("Not Found", status_code=404)
    body = await run_in_threadpool(ctx.metrics)
    return Response(body, media_type=CONTENT_TYPE)


def _with_separators(check: Check) -> dict[str, Any] | None:
    """An account's balance with thousands separators (100,000,000), like every figure of the pages."""
    if check.params and check.name.startswith("account:") and "value" in check.params:
        return {**check.params, "value": amount(check.params["value"])}
    return check.params


@router.get("/status")
def status_page(request: Request, ctx: Ctx, user: PageUser) -> Response:
    actions.require(user, Role.ADMIN, N_("seeing the system status"))
    checks = ctx.diagnose()
    rows: list[dict[str, Any]] = [
        {"name": c.name, "ok": c.ok, "detail": say(c.detail, c.msgid, _with_separators(c))} for c in checks
    ]
    return render(request, "status.html", user, checks=rows, healthy=all(c.ok for c in checks))

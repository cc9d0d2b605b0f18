"""From an HTTP request to the simulator's response: routing by path, latency, fault injection, the
vendors' answer wrapping, and the ``/_sim/*`` control endpoints. No I/O: the server does that."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from dispatcher.simulator import entinfo, trigger, webservice, yunxin
from dispatcher.simulator.gateway import Answer, Form, parse_form, wrap_asmx
from dispatcher.simulator.state import SimState

Action = Literal["answer", "reset", "drop"]
FAULT_KINDS = ("http500", "reset", "lost")
_PLAIN = "text/plain; charset=utf-8"
_XML = "text/xml; charset=utf-8"
_JSON = "application/json"


class VendorHandler(Protocol):
    @property
    def name(self) -> str: ...

    def user_of(self, method: str, form: Form) -> str: ...

    def is_send(self, method: str) -> bool: ...

    def handle(self, state: SimState, method: str, form: Form, now: float) -> Answer | None: ...


_VENDORS: dict[str, VendorHandler] = {
    "webservice": webservice.VENDOR,
    "yunxin": yunxin.VENDOR,
    "trigger": trigger.VENDOR,
    "entinfo": entinfo.VENDOR,
}

# (lower-case path prefix, vendor, wrapped in <string>); the method is the rest of the path.
_PREFIXES = (
    ("/services/msgsend.aspx/", "webservice", False),
    ("/services/msgsend.asmx/", "webservice", True),
    ("/api/msgsend.asmx/", "yunxin", True),
    ("/api/msgsend.aspx/", "yunxin", False),
    ("/winnerrxd/api/trigger/", "trigger", True),
    ("/webservice.asmx/", "entinfo", True),
)
# Whole paths naming a method themselves. A method name with a "/" is reachable by its whole path
# only: yunxin's personalised page is not a method of its MsgSend service.
_EXACT = {
    "/api/individualsm.aspx": ("yunxin", yunxin.INDIVIDUAL_PAGE, False),
    "/mdsmssend.ashx": ("entinfo", "mdsmssend", False),
    "/mdgxsend.ashx": ("entinfo", "mdgxsend", False),
}


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes
    content_type: str = _PLAIN
    action: Action = "answer"  # "reset": abort the connection; "drop": close it without an answer
    delay: float = 0.0  # seconds to wait before acting


def route(path: str) -> tuple[str, str, bool] | None:
    """``(vendor, method, wrapped)`` for a gateway path, method in lower case (ASP.NET ignores case)."""
    lower = path.lower().rstrip("/")
    exact = _EXACT.get(lower)
    if exact is not None:
        return exact
    for prefix, vendor, wrapped in _PREFIXES:
        if lower.startswith(prefix) and "/" not in lower[len(prefix) :]:
            return vendor, lower[len(prefix) :], wrapped
    return None


def _json(status: int, data: Any) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode(), _JSON)


class SimulatorApp:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.delay = state.config.latency_ms / 1000

    def handle(self, method: str, path: str, query: bytes, body: bytes, now: float) -> Response:
        if path.startswith("/_sim/"):
            return self._control(method, path, body, now)
        found = route(path)
        if found is None:
            return Response(404, b"Not Found", delay=self.delay)
        vendor_name, vendor_method, wrapped = found
        vendor = _VENDORS[vendor_name]
        form = parse_form(query, body)
        state = self.state
        if (
            vendor_name == "entinfo"
            and (charset := entinfo.VENDOR.form_encoding(state, vendor_method, form)) != "utf-8"
        ):
            form = parse_form(query, body, charset)
        fault = None
        rate = state.config.fault_rate
        if rate > 0 and vendor.is_send(vendor_method) and state.rng.random() < rate:
            fault = state.rng.choice(FAULT_KINDS)
            state.fault(vendor_name, vendor.user_of(vendor_method, form), fault, vendor_method, now)
            if fault == "http500":
                return Response(500, b"Internal Server Error", delay=self.delay)
            if fault == "reset":
                return Response(500, b"", action="reset", delay=self.delay)
        answer = vendor.handle(state, vendor_method, form, now)
        if answer is None:
            return Response(404, b"unknown method", delay=self.delay)
        if answer.code is not None:
            state.reject(vendor_name, vendor.user_of(vendor_method, form), answer.code, vendor_method, now)
        if fault == "lost":  # accepted (or refused) as usual, but the answer never arrives
            return Response(200, b"", action="drop", delay=self.delay)
        if wrapped:
            return Response(200, wrap_asmx(answer.text).encode(), _XML, delay=self.delay)
        return Response(200, answer.text.encode(), delay=self.delay)

    def _control(self, method: str, path: str, body: bytes, now: float) -> Response:
        if path == "/_sim/ledger" and method == "GET":
            return _json(200, self.state.ledger())
        if path == "/_sim/reset" and method == "POST":
            self.state.reset()
            return _json(200, {"ok": True})
        if path == "/_sim/mo" and method == "POST":
            return self._reply(body, now)
        if path == "/_sim/accounts" and method == "GET":
            return _json(200, [{"vendor": v, "account": u} for v, u in self.state.accounts])
        return _json(404, {"error": "unknown control endpoint"})

    def _reply(self, body: bytes, now: float) -> Response:
        """``{"vendor","account","mobile","text"}`` (optional ``customer_uuid``) queues a reply."""
        try:
            data = json.loads(body)
            vendor, account = str(data["vendor"]), str(data["account"])
            mobile, text = str(data["mobile"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return _json(400, {"error": "expected JSON with vendor, account, mobile, text"})
        acct = self.state.lookup(vendor, account)
        if acct is None or vendor == "entinfo":
            return _json(404, {"error": "no such account, or a vendor without replies"})
        ref = data.get("customer_uuid")
        self.state.add_reply(acct, mobile, text, now, None if ref is None else str(ref))
        return _json(200, {"ok": True})

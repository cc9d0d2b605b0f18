"""The web app as an attacker meets it, over real HTTP against the real store and Redis: forged and
stolen sessions, password guessing, cross-site requests, tokens, headers, and who sees phone numbers."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import itsdangerous
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from dispatcher.cli import app as cli
from dispatcher.keys import KeySpace
from dispatcher.store import ApiToken, AuditEntry, WebSession
from dispatcher.web import throttle
from dispatcher.web.auth import issue_token
from dispatcher.web.throttle import SignInThrottle
from tests.helpers import basic, draft, state
from tests.web.conftest import PASSWORD, REDIS_URL, Web, csrf_of

EVIL = "https://evil.example"


def sign_in(c: httpx.Client, name: str, password: str, **headers: str) -> httpx.Response:
    token = csrf_of(c.get("/login").text)
    return c.post("/login", data={"name": name, "password": password, "csrf": token}, headers=headers)


def audit_actions(web: Web) -> list[tuple[str, str]]:
    with web.sessions() as session:
        return [(e.actor, e.action) for e in session.execute(select(AuditEntry)).scalars()]


# --- item 1: a forged cookie is worth nothing, even signed with the right key -----------------------


def test_given_the_signing_key_when_forging_an_admin_cookie_then_it_is_refused(
    make_web: Callable[..., Web],
) -> None:
    # The old attack: sign {"user": "admin"} with the key (change-me on a default deployment). Even
    # with the real key, a cookie now needs a session id the store issued.
    web = make_web()
    signer = itsdangerous.TimestampSigner(str(web.settings.secret_key))
    for payload in ({"user": "admin"}, {"sid": "made-up-session-id"}):
        cookie = signer.sign(base64.b64encode(json.dumps(payload).encode())).decode()
        c = web.client()
        c.cookies.set("dispatcher_session", cookie)
        assert c.get("/api/me").status_code == 401
        assert c.get("/users").status_code == 303  # to the sign-in page


# --- item 3: throttling -------------------------------------------------------------------------------


def test_given_wrong_passwords_when_a_sixth_try_comes_within_the_minute_then_429_even_for_the_right_one(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    for _ in range(throttle.TRIES):
        assert sign_in(c, "admin", "wrong password").status_code == 401
    r = sign_in(c, "admin", PASSWORD)  # the right password, too late: no scrypt, no session
    assert r.status_code == 429
    wait = int(r.headers["retry-after"])
    assert 0 < wait <= throttle.BLOCK_S
    assert re.search(rf"too many attempts, try again in {wait} s", r.text)
    assert c.get("/api/me").status_code == 401
    # Audited: each failure, and the block once.
    actions = audit_actions(web)
    assert actions.count(("admin", "login.failed")) == throttle.TRIES
    assert actions.count(("admin", "login.blocked")) == 1
    # HTTP Basic is the same door: blocked as well.
    r = c.get("/api/me", headers=basic("admin"))
    assert r.status_code == 429 and "try again in" in r.json()["detail"]


def test_given_guesses_from_many_addresses_when_one_name_is_targeted_then_the_name_is_blocked(
    make_web: Callable[..., Web],
) -> None:
    # Clients behind the (trusted, loopback) proxy: X-Forwarded-For is their address.
    web = make_web()
    c = web.client()
    for i in range(throttle.TRIES):
        assert sign_in(c, "sender", "guess", **{"x-forwarded-for": f"10.0.0.{i}"}).status_code == 401
    assert sign_in(c, "sender", PASSWORD, **{"x-forwarded-for": "10.0.0.99"}).status_code == 429
    # Another user, from a fresh address, is not affected.
    assert sign_in(c, "viewer", PASSWORD, **{"x-forwarded-for": "10.0.0.100"}).status_code == 303


def test_given_guesses_of_many_names_from_one_address_then_the_address_is_blocked(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    for i in range(throttle.TRIES):
        r = sign_in(c, f"nobody{i}", "guess", **{"x-forwarded-for": "203.0.113.7"})
        assert r.status_code == 401
    r = sign_in(c, "admin", PASSWORD, **{"x-forwarded-for": "203.0.113.7"})
    assert r.status_code == 429
    assert sign_in(c, "admin", PASSWORD, **{"x-forwarded-for": "203.0.113.8"}).status_code == 303


def test_given_ipv6_clients_when_guessing_from_one_64_then_the_whole_64_is_blocked(
    make_web: Callable[..., Web],
) -> None:
    # One subscriber holds a /64: a fresh address per try must not buy fresh tries.
    web = make_web()
    c = web.client()
    for i in range(throttle.TRIES):
        r = sign_in(c, f"nobody{i}", "guess", **{"x-forwarded-for": f"2001:db8:1:2::{i + 1:x}"})
        assert r.status_code == 401
    assert sign_in(c, "admin", PASSWORD, **{"x-forwarded-for": "2001:db8:1:2:ffff::9"}).status_code == 429
    assert sign_in(c, "admin", PASSWORD, **{"x-forwarded-for": "2001:db8:1:3::1"}).status_code == 303


def test_given_an_untrusted_peer_when_it_sends_x_forwarded_for_then_its_own_address_is_counted(
    make_web: Callable[..., Web],
) -> None:
    # With no trusted proxy, a made-up X-Forwarded-For does not buy a fresh address per request.
    web = make_web(forwarded_allow_ips="192.0.2.1")
    c = web.client()
    for i in range(throttle.TRIES):
        assert sign_in(c, f"x{i}", "guess", **{"x-forwarded-for": f"198.51.100.{i}"}).status_code == 401
    assert sign_in(c, "admin", PASSWORD, **{"x-forwarded-for": "198.51.100.200"}).status_code == 429


def test_given_successful_sign_ins_when_many_come_from_one_office_then_none_is_throttled(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    for _ in range(3 * throttle.TRIES):
        assert sign_in(web.client(), "sender", PASSWORD).status_code == 303
    for _ in range(3 * throttle.TRIES):
        assert web.client().get("/api/me", headers=basic("viewer")).status_code == 200


def test_given_repeated_blocks_when_they_follow_each_other_then_each_lasts_twice_as_long(
    make_web: Callable[..., Web], monkeypatch: pytest.MonkeyPatch
) -> None:
    import redis

    monkeypatch.setattr(throttle, "BLOCK_S", 1)  # seconds instead of minutes, same arithmetic
    client = redis.Redis.from_url(REDIS_URL)
    keys = KeySpace(f"test-throttle-{id(client)}:")
    gate = SignInThrottle(client, keys)
    try:
        waits = []
        for _ in range(3):
            verdicts = [gate.attempt("mei", "192.0.2.9") for _ in range(throttle.TRIES + 1)]
            assert all(v.wait_s == 0 for v in verdicts[:-1]) and verdicts[-1].blocked_now
            waits.append(verdicts[-1].wait_s)
            assert gate.attempt("mei", "192.0.2.9").wait_s > 0  # still blocked, not a new block
            block = keys.login_key("block", "")
            deadline_keys = [k for k in client.scan_iter(match=f"{block}*")]
            assert deadline_keys
            for key in deadline_keys:
                client.delete(key)  # as if the block had run out
        assert waits == [1, 2, 4]
    finally:
        for key in client.scan_iter(match=f"{keys.prefix}*"):
            client.delete(key)
        client.close()


def test_given_redis_down_when_signing_in_then_503_not_unthrottled_and_api_tokens_go_on(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    with socket.socket() as s:  # a port nobody listens on: Redis does not answer
        s.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{s.getsockname()[1]}/0"
    ctx = web.app.state.ctx
    ctx.settings = dataclasses.replace(ctx.settings, redis_url=dead)  # before anything asked Redis
    r = sign_in(web.client(), "admin", PASSWORD)
    assert r.status_code == 503 and "Redis does not answer" in r.text
    r = web.client().get("/api/me", headers=basic("admin"))
    assert r.status_code == 503 and "Redis does not answer" in r.json()["detail"]
    assert ("admin", "login") not in audit_actions(web)
    with web.sessions() as session:
        token = issue_token(session, "sender", actor="test")
    bearer = {"authorization": f"Bearer {token}"}  # tokens and sessions live in the store
    assert web.client().get("/api/me", headers=bearer).json() == {"name": "sender", "role": "sender"}


# --- item 4: server-side sessions -------------------------------------------------------------------


def test_given_a_copied_cookie_when_its_owner_signs_out_then_the_copy_stops_working(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    owner = web.signed_in("sender")
    thief = web.client()
    thief.cookies.set("dispatcher_session", owner.cookies["dispatcher_session"])
    assert thief.get("/api/me").json() == {"name": "sender", "role": "sender"}
    html = owner.get("/campaigns").text
    assert owner.post("/logout", data={"csrf": csrf_of(html)}).status_code == 303
    assert thief.get("/api/me").status_code == 401
    assert thief.get("/campaigns").status_code == 303
    with web.sessions() as session:
        assert session.execute(select(WebSession)).scalars().all() == []


def test_given_signed_in_users_when_an_admin_changes_a_role_or_removes_one_then_their_sessions_end(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    sender, viewer = web.signed_in("sender"), web.signed_in("viewer")
    admin = web.signed_in("admin")
    token = csrf_of(admin.get("/users").text)
    assert admin.post("/users/sender/role", data={"role": "viewer", "csrf": token}).status_code == 303
    assert sender.get("/api/me").status_code == 401  # signs in again, under the new role
    assert admin.post("/users/viewer/remove", data={"csrf": token}).status_code == 303
    assert viewer.get("/api/me").status_code == 401
    assert admin.get("/api/me").status_code == 200


# --- item 5: no Basic challenge, tokens, cross-site requests ----------------------------------------


def test_given_any_refusal_then_no_response_asks_the_browser_for_basic_credentials(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    for method, url, headers in (
        ("GET", "/api/me", {}),
        ("POST", "/api/campaigns/1/cancel", {}),
        ("GET", "/api/me", basic("sender", "wrong password")),
        ("GET", "/api/me", {"authorization": "Basic !!!"}),
        ("GET", "/api/me", {"authorization": "Bearer dsp_not-a-token"}),
        ("GET", "/openapi.json", {}),
    ):
        r = c.request(method, url, headers=headers)
        assert r.status_code == 401
        assert "basic" not in r.headers.get("www-authenticate", "").lower()


def test_given_a_token_from_the_cli_when_used_then_it_works_until_revoked_and_is_stored_hashed(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    runner = CliRunner()
    r = runner.invoke(cli, ["user", "token", "sender"])
    assert r.exit_code == 0, r.output
    token = r.stdout.strip()
    assert token.startswith("dsp_") and len(token) > 40
    c = web.client()
    bearer = {"authorization": f"Bearer {token}"}
    assert c.get("/api/me", headers=bearer).json() == {"name": "sender", "role": "sender"}
    cid = draft(web)
    assert c.post(f"/api/campaigns/{cid}/cancel", headers=bearer).status_code == 200
    with web.sessions() as session:
        stored = session.execute(select(ApiToken.token_hash)).scalars().all()
    assert len(stored) == 1 and token not in stored[0] and len(stored[0]) == 64
    # A new token replaces the old one; --revoke ends it.
    second = runner.invoke(cli, ["user", "token", "sender"]).stdout.strip()
    assert c.get("/api/me", headers=bearer).status_code == 401
    assert runner.invoke(cli, ["user", "token", "sender", "--revoke"]).exit_code == 0
    assert c.get("/api/me", headers={"authorization": f"Bearer {second}"}).status_code == 401
    assert runner.invoke(cli, ["user", "token", "nobody"]).exit_code == 2


def test_given_another_sites_origin_when_a_state_changing_request_comes_then_403_whatever_it_carries(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    cid = draft(web)
    c = web.client()
    for headers in ({"origin": EVIL}, {"referer": f"{EVIL}/attack.html"}, {"origin": "null"}):
        r = c.post(f"/api/campaigns/{cid}/start", headers={**basic("sender"), **headers})
        assert r.status_code == 403 and r.json() == {"detail": "cross-site request refused"}
    # A cross-site form: sign-in (login CSRF) and a page action, too.
    page = web.signed_in("sender")
    html = page.get(f"/campaigns/{cid}").text
    r = page.post(f"/campaigns/{cid}/start", data={"csrf": csrf_of(html)}, headers={"origin": EVIL})
    assert r.status_code == 403 and "cross-site" in r.text
    assert c.post("/login", data={"name": "x"}, headers={"origin": EVIL}).status_code == 403
    assert state(web, cid) == "draft"
    # The same site, scripts without Origin, and the vendors' push receivers pass.
    r = c.post(f"/api/campaigns/{cid}/start", headers={**basic("sender"), "origin": web.base_url})
    assert r.status_code == 200
    assert state(web, cid) == "running"
    r = c.post(f"/push/{web.accounts['yunxin']}/replies?token=wrong", headers={"origin": EVIL})
    assert r.status_code == 403 and r.text != '{"detail":"cross-site request refused"}'


def test_given_a_signed_in_browser_when_it_also_sends_basic_credentials_then_only_the_cookie_counts(
    make_web: Callable[..., Web],
) -> None:
    # A browser that once cached an admin's Basic password must not turn a sender's page into an admin.
    web = make_web()
    c = web.signed_in("sender")
    assert c.get("/api/me", headers=basic("admin")).json() == {"name": "sender", "role": "sender"}
    assert c.get("/api/users", headers=basic("admin")).status_code == 403
    cid = draft(web)
    assert c.post(f"/api/campaigns/{cid}/cancel", headers=basic("admin")).status_code == 403  # no CSRF header


def test_given_a_body_above_the_limit_when_anyone_posts_it_then_413_before_the_app_reads_it(
    make_web: Callable[..., Web],
) -> None:
    # FastAPI would spool a multipart body to disk before checking who sent it.
    web = make_web(max_upload_bytes=1 << 20)
    c = web.client()
    big = b"x" * (3 << 20)
    r = c.post("/uploads", content=big, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and "request body larger than" in r.text
    r = c.post("/api/campaigns", content=big, headers={"content-type": "multipart/form-data; boundary=b"})
    assert r.status_code == 413 and r.json()["detail"].startswith("request body larger than")
    r = c.post("/login", content=b"name=" + b"x" * (17 << 20), headers=basic("sender"))
    assert r.status_code == 413
    assert c.get("/login").status_code == 200


# --- item 6 and headers ------------------------------------------------------------------------------


def test_given_no_session_when_opening_the_api_docs_then_sign_in_first(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.client()
    assert c.get("/docs").status_code == 303 and c.get("/openapi.json").status_code == 401
    assert c.get("/redoc").status_code == 404
    c = web.signed_in("viewer")
    docs = c.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "'sha256-" in docs.headers["content-security-policy"]
    assert "/api/campaigns" in c.get("/openapi.json").json()["paths"]


def test_given_a_viewer_when_asking_for_phone_numbers_then_refused_and_a_sender_gets_them(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    cid = draft(web)
    viewer = web.signed_in("viewer")
    html = viewer.get(f"/campaigns/{cid}").text
    assert 'id="export-xlsx"' not in html and 'href="/optouts"' not in html
    for url in (f"/campaigns/{cid}/export?format=csv", "/optouts", "/replies"):
        assert viewer.get(url).status_code == 403
    c = web.client()
    for url in (f"/api/campaigns/{cid}/export?format=csv", "/api/optouts", "/api/replies"):
        r = c.get(url, headers=basic("viewer"))
        assert r.status_code == 403 and "sender role" in r.json()["detail"]
        assert c.get(url, headers=basic("sender")).status_code == 200
    assert viewer.get(f"/campaigns/{cid}").status_code == 200  # progress stays visible
    sender = web.signed_in("sender")
    export = sender.get(f"/campaigns/{cid}/export?format=csv")
    assert export.status_code == 200 and "13900000000" in export.text


def test_given_no_https_public_url_when_signing_in_then_the_cookie_works_over_plain_http(
    make_web: Callable[..., Web],
) -> None:
    r = sign_in(make_web().client(), "sender", PASSWORD)
    assert r.status_code == 303 and "secure" not in r.headers["set-cookie"].lower()
    assert "strict-transport-security" not in r.headers


def test_given_https_public_url_when_signing_in_then_the_cookie_is_secure_and_hsts_is_sent(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(settings_toml='public_url = "https://sms.example.com"')
    c = web.client()
    page = c.get("/login")
    assert "; secure" in page.headers["set-cookie"].lower()
    # The client (rightly) keeps a Secure cookie off plain http: hand it over as a TLS proxy would.
    value = page.headers["set-cookie"].split(";")[0]
    r = c.post(
        "/login",
        data={"name": "sender", "password": PASSWORD, "csrf": csrf_of(page.text)},
        headers={"cookie": value, "origin": "https://sms.example.com"},
    )
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert r.headers["strict-transport-security"].startswith("max-age=")


def test_given_any_page_then_security_headers_and_a_csp_without_inline_script(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.signed_in("sender")
    cid = draft(web)
    for url in ("/login", "/campaigns", f"/campaigns/{cid}", "/campaigns/new", "/api/me", "/nowhere"):
        r = c.get(url)
        csp = r.headers["content-security-policy"]
        script_src = re.search(r"script-src ([^;]*)", csp)
        assert script_src and script_src.group(1) == "'self'", csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
        assert r.headers["cache-control"] == "no-store"
    assert "no-store" not in c.get("/static/style.css").headers.get("cache-control", "")


def test_templates_have_no_inline_script_or_event_handlers() -> None:
    folder = Path(__file__).parents[2] / "dispatcher" / "web" / "templates"
    for template in folder.glob("*.html"):
        html = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), template.name
        assert not re.search(r"\son[a-z]+\s*=", html), template.name
        assert "javascript:" not in html and "style=" not in html, template.name

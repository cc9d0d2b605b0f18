"""Sign-in, roles, CSRF and the approval rule, through the app over its HTTP interface."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from dispatcher.store import AuditEntry, Campaign
from dispatcher.web.auth import hash_password, verify_password
from tests.helpers import basic, draft, state
from tests.web.conftest import PASSWORD, Web, csrf_of


def test_given_a_password_when_hashed_then_salted_scrypt_verifies_only_it() -> None:
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$")
    assert verify_password("s3cret-pass", first) and not verify_password("s3cret-pasS", first)
    assert not verify_password("x", "garbage")


def test_given_no_credentials_when_calling_api_or_pages_then_401_or_sign_in(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    for method, url in (("GET", "/api/campaigns"), ("POST", "/api/campaigns/1/start"), ("GET", "/api/me")):
        r = c.request(method, url)
        assert r.status_code == 401 and r.json()["detail"]
    assert c.get("/api/me", headers=basic("sender", "wrong password")).status_code == 401
    r = c.get("/campaigns")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_given_a_user_when_signing_in_then_session_works_and_wrong_password_does_not(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"name": "sender", "password": "nope-nope", "csrf": token})
    assert r.status_code == 401 and "wrong name or password" in r.text
    assert c.get("/campaigns").status_code == 303
    r = c.post(
        "/login", data={"name": "sender", "password": PASSWORD, "csrf": token, "next": "//evil.example/"}
    )
    assert r.status_code == 303 and r.headers["location"] == "/campaigns"  # no open redirect
    assert c.get("/campaigns").status_code == 200
    assert c.get("/api/me").json() == {"name": "sender", "role": "sender"}
    assert PASSWORD not in c.cookies.get("dispatcher_session", "")


def test_given_forms_without_csrf_token_when_posted_then_403_and_nothing_done(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    cid = draft(web)
    c = web.client()
    assert c.post("/login", data={"name": "sender", "password": PASSWORD}).status_code == 403
    c = web.signed_in("sender")
    assert c.post(f"/campaigns/{cid}/start", data={"csrf": "forged"}).status_code == 403
    # The JSON API with the session cookie wants the token in a header, too.
    assert c.post(f"/api/campaigns/{cid}/start").status_code == 403
    assert state(web, cid) == "draft"


def test_given_a_viewer_when_starting_a_campaign_then_refused_and_it_stays_draft(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    cid = draft(web)
    c = web.client()
    r = c.post(f"/api/campaigns/{cid}/start", headers=basic("viewer"))
    assert r.status_code == 403 and "sender role" in r.json()["detail"]
    page = web.signed_in("viewer")
    html = page.get(f"/campaigns/{cid}").text
    assert 'id="start"' not in html  # no button for a viewer
    r = page.post(f"/campaigns/{cid}/start", data={"csrf": csrf_of(html)})
    assert r.status_code == 403
    assert state(web, cid) == "draft"
    # A sender may.
    r = c.post(f"/api/campaigns/{cid}/start", headers=basic("sender"))
    assert r.status_code == 200 and r.json()["queued_requests"] >= 1
    assert state(web, cid) == "running"


def test_given_a_campaign_above_the_threshold_when_started_then_it_needs_an_admins_approval(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(threshold=2)
    cid = draft(web, rows=3)
    c = web.client()
    r = c.post(f"/api/campaigns/{cid}/start", headers=basic("sender"))
    assert r.status_code == 403 and "approve" in r.json()["detail"]
    assert state(web, cid) == "draft"
    assert c.post(f"/api/campaigns/{cid}/approve", headers=basic("sender")).status_code == 403
    admin = web.signed_in("admin")
    html = admin.get(f"/campaigns/{cid}").text
    assert 'id="approve"' in html
    assert admin.post(f"/campaigns/{cid}/approve", data={"csrf": csrf_of(html)}).status_code == 303
    with web.sessions() as session:
        assert session.get(Campaign, cid).approved_by == "admin"  # type: ignore[union-attr]
        actions = session.execute(select(AuditEntry.action).where(AuditEntry.campaign_id == cid)).scalars()
        assert "campaign.approve" in list(actions)
    assert c.post(f"/api/campaigns/{cid}/start", headers=basic("sender")).status_code == 200
    assert state(web, cid) == "running"


def test_given_a_small_campaign_when_started_then_no_approval_needed(
    make_web: Callable[..., Web], tmp_path: Path
) -> None:
    web = make_web(threshold=5)
    cid = draft(web, rows=3)
    assert web.client().post(f"/api/campaigns/{cid}/start", headers=basic("sender")).status_code == 200

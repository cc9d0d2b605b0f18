"""The JSON API: campaigns, opt-outs, accounts and balance, users; documented by OpenAPI."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from celery.contrib.testing.worker import start_worker
from sqlalchemy import select

from dispatcher.store import Recipient
from tests.helpers import basic
from tests.web.conftest import Web, write_contacts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_given_a_sender_when_creating_and_starting_by_api_then_workers_send_every_message(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(worker=True)
    c = web.client()
    path = write_contacts(
        web.tmp / "c.xlsx", [(f"1390000{i:04d}", f"客户{i}") for i in range(5)] + [("bad", "x")]
    )
    form = {"template": "{姓名}您好，回T退订【测试】", "account": web.accounts["trigger"]}
    files = {"file": ("c.xlsx", path.read_bytes(), XLSX)}
    preview = c.post("/api/campaigns/preview", data=form, files=files, headers=basic("sender"))
    assert preview.status_code == 200
    assert preview.json()["messages"] == 5 and preview.json()["rejected"][0]["value"] == "bad"
    r = c.post("/api/campaigns", data=form, files=files, headers=basic("sender"))
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    assert r.json()["messages"] == 5 and r.json()["state"] == "draft"
    assert [x["id"] for x in c.get("/api/campaigns", headers=basic("viewer")).json()] == [cid]
    assert c.post(f"/api/campaigns/{cid}/start", headers=basic("sender")).status_code == 200
    web.wait_for(lambda: c.get(f"/api/campaigns/{cid}", headers=basic("viewer")).json()["accepted"] == 5)
    progress = c.get(f"/api/campaigns/{cid}/progress", headers=basic("viewer")).json()
    assert progress["series"]["accepted"][-1][1] == 5
    export = c.get(f"/api/campaigns/{cid}/export?format=csv", headers=basic("sender"))
    assert export.status_code == 200
    exported = list(csv.DictReader(io.StringIO(export.text.lstrip("\ufeff"))))
    assert sorted(r["mobile"] for r in exported if r["state"] != "rejected") == [
        f"1390000{i:04d}" for i in range(5)
    ]
    assert [r["手机号"] for r in exported] == [
        *(f"1390000{i:04d}" for i in range(5)),
        "bad",
    ]  # the list's own
    assert c.get("/api/campaigns/999", headers=basic("viewer")).status_code == 404


def test_given_opt_out_edits_when_not_admin_then_403_else_listed(make_web: Callable[..., Web]) -> None:
    web = make_web()
    c = web.client()
    body = {"mobiles": ["+86 139-0000-0001", "oops"], "note": "asked by phone"}
    assert c.post("/api/optouts", json=body, headers=basic("sender")).status_code == 403
    r = c.post("/api/optouts", json=body, headers=basic("admin"))
    assert r.json() == {"added": 1, "invalid": ["oops"]}
    assert [o["mobile"] for o in c.get("/api/optouts", headers=basic("sender")).json()] == ["13900000001"]
    assert c.delete("/api/optouts/13900000001", headers=basic("admin")).status_code == 200
    assert c.get("/api/optouts", headers=basic("sender")).json() == []


def test_given_an_account_when_asking_the_balance_twice_then_the_second_is_the_cached_answer(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    name = web.accounts["yunxin"]
    first = c.get(f"/api/accounts/{name}/balance", headers=basic("sender")).json()
    assert first["value"] and not first["cached"] and first["error"] is None
    second = c.get(f"/api/accounts/{name}/balance", headers=basic("sender")).json()
    assert second["cached"] and second["value"] == first["value"]  # the vendor allows one per 10 s
    assert c.get(f"/api/accounts/{name}/balance", headers=basic("viewer")).status_code == 403
    accounts = c.get("/api/accounts", headers=basic("viewer")).text
    assert "demo" not in accounts and "push-secret" not in accounts  # no credentials, no tokens


def test_given_an_admin_when_adding_a_user_by_api_then_the_user_can_sign_in(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    c = web.client()
    body = {"name": "mei", "password": "long enough pw", "role": "sender"}
    assert c.post("/api/users", json=body, headers=basic("sender")).status_code == 403
    assert c.post("/api/users", json=body, headers=basic("admin")).status_code == 201
    assert c.get("/api/me", headers=basic("mei", "long enough pw")).json() == {
        "name": "mei",
        "role": "sender",
    }
    short = {"name": "li", "password": "short", "role": "viewer"}
    r = c.post("/api/users", json=short, headers=basic("admin"))
    assert r.status_code == 400 and "at least 8" in r.json()["detail"]


def test_openapi_documents_the_api_and_the_push_receivers(make_web: Callable[..., Web]) -> None:
    paths = make_web().client().get("/openapi.json", headers=basic("viewer")).json()["paths"]
    for path in (
        "/api/campaigns",
        "/api/campaigns/{campaign_id}/{action}",
        "/api/optouts",
        "/push/{account}/reports",
    ):
        assert path in paths
    assert "/login" not in paths


def test_given_an_opt_out_added_by_api_when_its_campaign_is_queued_then_the_number_is_not_sent(
    make_web: Callable[..., Web],
) -> None:
    # Given a started campaign whose chunks wait in the queue (no worker yet)
    web = make_web()
    c = web.client()
    mobiles = [f"1390000{i:04d}" for i in range(3)]
    path = write_contacts(web.tmp / "c.xlsx", [(m, f"客户{i}") for i, m in enumerate(mobiles)])
    form = {"template": "{姓名}您好，回T退订【测试】", "account": web.accounts["trigger"]}
    r = c.post(
        "/api/campaigns",
        data=form,
        files={"file": ("c.xlsx", path.read_bytes(), XLSX)},
        headers=basic("sender"),
    )
    cid = r.json()["id"]
    assert c.post(f"/api/campaigns/{cid}/start", headers=basic("sender")).status_code == 200

    # When an admin opts one number out through the API
    r = c.post("/api/optouts", json={"mobiles": [mobiles[1]]}, headers=basic("admin"))
    assert r.json() == {"added": 1, "invalid": []}

    # Then, once a worker sends the campaign, that number is not sent, and listed with the reason
    with start_worker(
        web.celery, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=20
    ):
        web.wait_for(lambda: c.get(f"/api/campaigns/{cid}", headers=basic("viewer")).json()["accepted"] == 2)
    assert sorted(e["mobile"] for e in web.sim.ledger()["accepted"]) == [mobiles[0], mobiles[2]]
    with web.sessions() as session:
        row = session.execute(
            select(Recipient.state, Recipient.reject_reason).where(Recipient.mobile == mobiles[1])
        )
        assert row.one() == ("rejected", "opted out")


def test_given_a_negative_or_huge_page_when_listing_phone_numbers_then_422_not_the_whole_list(
    make_web: Callable[..., Web],
) -> None:
    # limit=-1 was "no limit" to SQLite: the whole opt-out list (or every reply) in one answer.
    web = make_web()
    c = web.client()
    body = {"mobiles": [f"1390000{i:04d}" for i in range(12)]}
    assert c.post("/api/optouts", json=body, headers=basic("admin")).json()["added"] == 12
    for url in ("/api/optouts", "/api/replies"):
        for query in ("limit=-1", "limit=-100", "offset=-1", f"offset={10**30}"):
            r = c.get(f"{url}?{query}", headers=basic("sender"))
            assert r.status_code == 422, (url, query, r.text)
    assert len(c.get("/api/optouts?limit=5&offset=5", headers=basic("sender")).json()) == 5
    assert len(c.get(f"/api/optouts?limit={10**30}", headers=basic("sender")).json()) == 12  # capped


def test_given_a_campaign_id_or_page_beyond_any_integer_when_asked_then_a_clear_answer_not_a_crash(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    huge = 10**30
    c = web.client()
    for url in (f"/api/campaigns/{huge}", f"/api/campaigns/{huge}/progress", f"/api/campaigns/{huge}/export"):
        r = c.get(url, headers=basic("sender"))
        assert r.status_code in (404, 422) and r.json()["detail"], (url, r.text)
    r = c.post(f"/api/campaigns/{huge}/cancel", headers=basic("sender"))
    assert r.status_code in (404, 422), r.text
    page = web.signed_in("sender")
    for url in (f"/campaigns/{huge}", f"/campaigns/{huge}/export?format=csv"):
        assert page.get(url).status_code in (404, 422), url
    admin = web.signed_in("admin")
    for url in (f"/optouts?page={huge}", f"/replies?page={huge}"):
        assert admin.get(url).status_code == 200, url


def test_given_a_control_character_in_a_contacts_field_when_exporting_xlsx_then_the_export_still_downloads(
    make_web: Callable[..., Web],
) -> None:
    # XML cannot hold most control characters: openpyxl refused the whole file, so one cell in a list
    # (a CSV can hold anything) made the campaign's xlsx export a 500 for good.
    import io

    import openpyxl

    from dispatcher import campaigns

    web = make_web()
    path = web.tmp / "c.csv"
    path.write_text("手机号,姓名\n13900000001,a\x01b\n13900000002,=1+1\n", encoding="utf-8")
    created = campaigns.create(
        web.sessions,
        web.settings,
        path,
        "{姓名}您好，回T退订【测试】",
        web.accounts["yunxin"],
        actor="sender",
    )
    c = web.client()
    url = f"/api/campaigns/{created.campaign_id}/export"
    r = c.get(f"{url}?format=xlsx", headers=basic("sender"))
    assert r.status_code == 200, r.text
    sheet = openpyxl.load_workbook(io.BytesIO(r.content)).active
    assert sheet is not None
    texts = [row[2] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert texts == ["a\ufffdb您好，回T退订【测试】", "=1+1您好，回T退订【测试】"]  # a text, not a formula
    assert sheet.cell(3, 3).data_type == "s"
    csv = c.get(f"{url}?format=csv", headers=basic("sender"))
    assert "a\x01b您好" in csv.text  # CSV keeps the character as it came

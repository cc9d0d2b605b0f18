"""Helpers that several test modules share (a test module never imports another test module).

The web tests' helpers: HTTP Basic headers, a draft campaign, an upload through the pages, the browser.
"""

from __future__ import annotations

import base64

import httpx

from dispatcher import campaigns
from tests.web.conftest import PASSWORD, Web, csrf_of, write_contacts

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def basic(name: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


def draft(web: Web, rows: int = 3) -> int:
    path = write_contacts(web.tmp / "c.xlsx", [(f"139{i:08d}", f"客户{i}") for i in range(rows)])
    created = campaigns.create(
        web.sessions,
        web.settings,
        path,
        "{姓名}您好，回T退订【测试】",
        web.accounts["yunxin"],
        actor="sender",
    )
    return created.campaign_id


def state(web: Web, campaign_id: int) -> str:
    with web.sessions() as session:
        return campaigns.get(session, campaign_id).state


def upload(web: Web, c: httpx.Client, rows: list[tuple[object, ...]]) -> str:
    path = write_contacts(web.tmp / "名单.xlsx", rows)
    token = csrf_of(c.get("/campaigns/new").text)
    r = c.post("/uploads", data={"csrf": token}, files={"file": ("名单.xlsx", path.read_bytes(), XLSX)})
    assert r.status_code == 303, r.text
    return str(r.headers["location"])

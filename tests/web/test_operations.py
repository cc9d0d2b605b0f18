"""The operators' side of the web app: ``GET /metrics`` (who may read it, what it counts) and the
系统状态 page; a campaign with no worker says so through the API."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable

from tests.helpers import basic
from tests.web.conftest import Web, write_contacts

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOKEN = secrets.token_urlsafe(24)


def start(web: Web, rows: int) -> int:
    c = web.client()
    path = write_contacts(web.tmp / "c.xlsx", [(f"1390000{i:04d}", f"客户{i}") for i in range(rows)])
    form = {"template": "{姓名}您好，回T退订【测试】", "account": web.accounts["yunxin"]}
    created = c.post(
        "/api/campaigns",
        data=form,
        files={"file": ("c.xlsx", path.read_bytes(), XLSX)},
        headers=basic("sender"),
    )
    assert created.status_code == 201, created.text
    cid = int(created.json()["id"])
    assert c.post(f"/api/campaigns/{cid}/start", headers=basic("sender")).status_code == 200
    return cid


def test_given_a_campaign_sent_by_the_workers_then_metrics_count_its_account_requests_read_from_redis_and_store(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(worker=True)
    c = web.client()
    cid = start(web, 5)
    web.wait_for(lambda: c.get(f"/api/campaigns/{cid}", headers=basic("viewer")).json()["accepted"] == 5)
    account = web.accounts["yunxin"]
    text = c.get("/metrics").text
    found = re.search(
        rf'dispatcher_requests_total\{{account="{account}",error_class="",outcome="accepted",vendor="yunxin"\}} (\S+)',
        text,
    )
    assert found is not None and float(found.group(1)) >= 1, text
    assert re.search(rf'dispatcher_recipients\{{account="{account}",state="accepted"\}} 5\.0', text)
    assert re.search(rf'dispatcher_limiter_waits_total\{{account="{account}"\}} [1-9]', text)
    assert "dispatcher_workers_alive 1.0" in text  # the test's worker writes its heartbeat
    assert "# TYPE dispatcher_request_duration_seconds histogram" in text


def test_given_requests_from_elsewhere_then_metrics_answer_only_loopback_or_the_token(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(settings_toml=f'metrics_token = "{TOKEN}"')
    c = web.client()
    assert c.get("/metrics").status_code == 200  # a scraper on this machine
    # Relayed by a proxy on this machine, or named otherwise: not local
    assert c.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert c.get("/metrics", headers={"Host": "sms.example.com"}).status_code == 404
    assert (
        c.get("/metrics", headers={"X-Forwarded-For": "1.2.3.4", "Authorization": "Bearer wrong"}).status_code
        == 404
    )
    bearer = {"X-Forwarded-For": "203.0.113.9", "Authorization": f"Bearer {TOKEN}"}
    answer = c.get("/metrics", headers=bearer)
    assert answer.status_code == 200 and "dispatcher_beat_alive" in answer.text
    # (the counters are the shared Redis's: other tests' accounts appear; no secret of any does)
    assert TOKEN not in answer.text and "password" not in answer.text.lower()


def test_given_no_worker_then_the_api_says_the_campaign_waits_for_workers(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(worker=False)
    cid = start(web, 2)
    status = web.client().get(f"/api/campaigns/{cid}", headers=basic("viewer")).json()
    assert (
        status["state"] == "running" and status["waiting"] == "workers" and status["workers_seen_at"] is None
    )
    page = web.signed_in("viewer", "zh-CN").get(f"/campaigns/{cid}").text
    assert "没有发送进程在运行（从未见到）" in page


def test_given_an_admin_then_the_status_page_shows_the_checks_and_others_are_refused(
    make_web: Callable[..., Web],
) -> None:
    web = make_web(worker=True)
    page = web.signed_in("admin", "zh-CN").get("/status")
    assert page.status_code == 200 and "系统状态" in page.text
    assert 'id="checks"' in page.text and "store" in page.text and "beat" in page.text
    assert "此数据库没有运行中的定时任务进程" in page.text  # no beat in this test
    assert "demo" not in page.text.replace("demo/", "")
    assert web.signed_in("sender").get("/status").status_code == 403


def test_given_an_ipv4_mapped_loopback_peer_then_metrics_count_it_as_local() -> None:
    from starlette.requests import Request

    from dispatcher.web.operations import metrics_allowed

    def request(peer: str, host: str = "127.0.0.1:8000") -> Request:
        headers = [(b"host", host.encode())]
        return Request({"type": "http", "method": "GET", "path": "/metrics", "headers": headers,
                        "client": (peer, 50000), "query_string": b"", "scheme": "http"})  # fmt: skip

    # A dual-stack socket (uvicorn --host ::) names an IPv4 scraper on this machine so
    assert metrics_allowed(request("::ffff:127.0.0.1"), None)
    assert metrics_allowed(request("::ffff:127.0.0.1", "[::ffff:127.0.0.1]:8000"), None)
    assert not metrics_allowed(request("::ffff:203.0.113.9"), None)
    assert not metrics_allowed(request("203.0.113.9"), None)

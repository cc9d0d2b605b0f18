"""The 定时任务 page over real HTTP: senders see each schedule's next firing and last runs with the
campaigns they made, in Chinese, and pause or resume it; viewers do not see it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import update

from dispatcher.schedules import firing, records
from dispatcher.store.models import Schedule
from tests.web.conftest import Web, csrf_of, write_contacts


def _schedule(web: Web) -> None:
    source = write_contacts(web.tmp / "members.xlsx", [("13900000002", "王")])
    new = records.NewSchedule(
        "会员日",
        "0 10 * * *",
        str(source),
        "{姓名}您好，回T退订【测试】",
        web.accounts["yunxin"],
        workdays=True,
    )
    records.add(web.sessions, web.settings, new, "test")
    with web.sessions() as session:  # looked at last on 2026-09-30; the beat looks on National Day
        session.execute(update(Schedule).values(cursor=datetime(2026, 9, 30, 3, 0, tzinfo=UTC)))
        session.commit()
    firing.fire_due(web.sessions, web.settings, now=datetime(2026, 10, 1, 2, 0, 5, tzinfo=UTC))
    with web.sessions() as session:  # and next on 2026-10-09 (a Friday, worked) at 09:00
        session.execute(update(Schedule).values(cursor=datetime(2026, 10, 9, 1, 0, tzinfo=UTC)))
        session.commit()
    firing.fire_due(web.sessions, web.settings, now=datetime(2026, 10, 9, 2, 0, 5, tzinfo=UTC))


def test_given_schedules_then_a_sender_sees_runs_in_chinese_and_pauses_and_resumes(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    _schedule(web)
    sender = web.signed_in("sender", language="zh-CN")
    # When the sender opens 定时任务
    page = sender.get("/schedules")
    # Then the holiday's firing says why in Chinese, the next one made a campaign linked from the page
    assert page.status_code == 200
    assert "定时任务" in page.text and "会员日" in page.text
    assert "非工作日：未发送" in page.text and "国庆节" in page.text
    assert "已创建活动" in page.text and 'href="/campaigns/1"' in page.text
    assert "下次触发" in page.text
    # When paused from the page, then it says so and the store agrees; resumed again
    paused = sender.post(
        "/schedules/pause", data={"name": "会员日", "paused": "1", "csrf": csrf_of(page.text)}
    )
    assert paused.status_code == 303
    assert records.listing(web.sessions)[0]["paused"] is True
    again = sender.get("/schedules")
    assert "已暂停" in again.text
    sender.post("/schedules/pause", data={"name": "会员日", "paused": "0", "csrf": csrf_of(again.text)})
    assert records.listing(web.sessions)[0]["paused"] is False


def test_given_a_viewer_then_the_schedules_page_and_its_buttons_are_refused(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    _schedule(web)
    viewer = web.signed_in("viewer")
    assert viewer.get("/schedules").status_code == 403
    page = viewer.get("/campaigns")
    refused = viewer.post(
        "/schedules/pause", data={"name": "会员日", "paused": "1", "csrf": csrf_of(page.text)}
    )
    assert refused.status_code == 403
    assert records.listing(web.sessions)[0]["paused"] is False

"""Every page the app has, in Chinese, read as a person reads it: no English word outside an allow-list
(vendor ids, account and user names, code values, file suffixes, units, numbers). Over real HTTP, signed
in as admin, with a campaign (started by hand, made by the CLI, with a proof), an account's balance, a
schedule that ran, an upload previewed and one that cannot be read."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from html.parser import HTMLParser

import httpx
from sqlalchemy import update

from dispatcher import campaigns
from dispatcher.schedules import firing, records
from dispatcher.store.models import Schedule
from tests.helpers import XLSX, upload
from tests.web.conftest import Web, csrf_of, write_contacts

TEMPLATE = "{姓名}您好，会员日全场8折，回T退订【测试】"
# Words a Chinese page may carry: vendor ids, file suffixes, code values and units people know.
ALLOWED = {
    "webservice", "yunxin", "trigger", "entinfo",  # vendor ids (after their Chinese label)
    "viewer", "sender", "admin",  # the test's user names (data, not words of the page)
    "xlsx", "xlsm", "xls", "ods", "csv", "mb",  # file types, a unit
    "excel", "redis", "toml",  # product and format names
    "english",  # the language switch names English in English
    "content_encoding", "url", "gb2312",  # the entinfo hint's setting and its values
    "accounts",  # the TOML table the account page points to ([accounts.名称])
    "mobile", "phone",  # header names the reader recognises, quoted in its message
    "dispatcher", "doctor",  # the command the status page's checks come from
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]+")
_PATH = re.compile(r"\S*/\S*")  # a file's path or an address: data, not words
_READ_ATTRS = {"title", "placeholder", "aria-label", "alt", "data-confirm", "label"}


class _Visible(HTMLParser):
    """The text of a page that a person reads: its text and the attributes shown to them."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in _READ_ATTRS and value:
                self.parts.append(value)
            if tag == "input" and name == "value" and dict(attrs).get("type") in ("submit", "button"):
                self.parts.append(value or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def english_words(html: str, allowed: set[str]) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    text = _PATH.sub(" ", " ".join(parser.parts))
    return sorted({w for w in _WORD.findall(text) if w.lower() not in allowed and w not in allowed})


_HAN = "\u4e00-\u9fff"
# ASCII punctuation in Chinese: a comma, colon or semicolon right after a Chinese character, brackets\n# around Chinese words.
_ASCII_PUNCTUATION = re.compile(f"[{_HAN}][,:;]|\\([^()]*[{_HAN}][^()]*\\)")


def ascii_punctuation(html: str) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    return sorted({m.group(0) for m in _ASCII_PUNCTUATION.finditer(" ".join(parser.parts))})


def _schedule(web: Web) -> None:
    source = write_contacts(web.tmp / "members.xlsx", [("13900000002", "王")])
    new = records.NewSchedule(
        "会员日", "0 10 * * *", str(source), TEMPLATE, web.accounts["yunxin"], workdays=True
    )
    records.add(web.sessions, web.settings, new, "cli")
    with web.sessions() as session:  # it ran on National Day (a holiday) and on the next working day
        session.execute(update(Schedule).values(cursor=datetime(2026, 9, 30, 3, 0, tzinfo=UTC)))
        session.commit()
    firing.fire_due(web.sessions, web.settings, now=datetime(2026, 10, 1, 2, 0, 5, tzinfo=UTC))
    with web.sessions() as session:
        session.execute(update(Schedule).values(cursor=datetime(2026, 10, 9, 1, 0, tzinfo=UTC)))
        session.commit()
    firing.fire_due(web.sessions, web.settings, now=datetime(2026, 10, 9, 2, 0, 5, tzinfo=UTC))


def _pages(web: Web, c: httpx.Client) -> dict[str, str]:
    """Every page, rendered: {what it is: html}."""
    pages: dict[str, str] = {"sign-in": web.client("zh-CN").get("/login").text}
    compose = upload(web, c, [("13900000001", "张三"), ("12345", "李四"), ("13900000003", "王五")])
    token = csrf_of(c.get(compose).text)
    form = {"csrf": token, "sheet": "客户", "phone_column": "手机号", "template": TEMPLATE,
            "account": web.accounts["entinfo"], "window": "08:00-08:01"}  # fmt: skip
    pages["compose"] = c.get(compose).text
    pages["preview"] = c.post(compose + "/preview", data=form).text
    pages["proof"] = c.post(compose + "/proof", data={**form, "proof_numbers": "13800138000"}).text
    pages["refused proof"] = c.post(compose + "/proof", data={**form, "proof_numbers": "12345"}).text
    created = c.post(compose + "/create", data={**form, "window": ""})
    assert created.status_code == 303, created.text
    campaign = created.headers["location"]
    pages["created"] = c.get(campaign).text
    c.post(campaign + "/start", data={"csrf": token})
    pages["started"] = c.get(campaign).text
    # A campaign the CLI made, paused by the scheduler's actor; a proof's own page
    path = write_contacts(web.tmp / "命令行名单.xlsx", [("13900000009", "赵六")])
    cli = campaigns.create(web.sessions, web.settings, path, TEMPLATE, web.accounts["trigger"], actor="cli")
    campaigns.start(web.sessions, cli.campaign_id, "scheduler")
    campaigns.pause(web.sessions, cli.campaign_id, "scheduler")
    pages["cli campaign"] = c.get(f"/campaigns/{cli.campaign_id}").text
    proof = re.search(r'data-proof="(\d+)"', pages["proof"])
    assert proof, "no proof on the page"
    pages["proof campaign"] = c.get(f"/campaigns/{proof.group(1)}").text
    # A file that cannot be read: the error names the file and the sheet
    bad = write_contacts(web.tmp / "空.xlsx", [], header=("备注",))
    r = c.post("/uploads", data={"csrf": token}, files={"file": ("空.xlsx", bad.read_bytes(), XLSX)})
    pages["unreadable"] = c.get(r.headers["location"]).text
    for path in ("/campaigns", "/campaigns/new", "/optouts", "/replies", "/accounts", "/users", "/status",
                 "/schedules", f"/accounts?balance={web.accounts['yunxin']}", "/campaigns/999999"):  # fmt: skip
        pages[path] = c.get(path).text
    return pages


def test_given_every_page_in_chinese_then_no_english_word_is_left_outside_the_allow_list(
    make_web: Callable[..., Web],
) -> None:
    web = make_web()
    _schedule(web)
    c = web.signed_in("admin", language="zh-CN")
    allowed = ALLOWED | {w.lower() for name in web.accounts.values() for w in _WORD.findall(name)}
    pages = _pages(web, c)
    found = {what: english_words(html, allowed) for what, html in pages.items()}
    punctuation = {what: marks for what, html in pages.items() if (marks := ascii_punctuation(html))}
    assert punctuation == {}
    assert "余额 100,000,000" in pages["/status"]  # every figure with thousands separators
    left = {what: words for what, words in found.items() if words}
    assert left == {}, "\n".join(f"{what}: {words}" for what, words in left.items())

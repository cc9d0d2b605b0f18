"""The catalogs: the Chinese one complete, both current with the code and templates; the language rules."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from dispatcher import i18n, labels, reasons

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "N_": None,
    "NP_": ((1, "c"), 2),
    "pgettext": ((1, "c"), 2),
}


def catalog(locale: str) -> Catalog:
    with (i18n.CATALOGS / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def extracted() -> set[tuple[str | None, str]]:
    """Every message the code and the templates mark, as ``pybabel extract -F babel.cfg`` finds them."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as handle:
        method_map, options_map = parse_mapping_cfg(handle)
    found = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        ROOT, method_map, options_map, keywords=KEYWORDS
    ):
        found.add((context, message if isinstance(message, str) else message[0]))
    return found


def messages(cat: Catalog) -> set[tuple[str | None, str]]:
    return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in cat if m.id}


def test_the_chinese_catalog_translates_every_message_and_none_is_fuzzy() -> None:
    zh = catalog("zh_CN")
    untranslated = [m.id for m in zh if m.id and not m.string]
    fuzzy = [m.id for m in zh if m.id and m.fuzzy]
    assert untranslated == [] and fuzzy == []
    # And every translation keeps its placeholders (Babel's own checks: python-format and the like)
    problems = [(m.id, [str(e) for e in errors]) for m, errors in zh.check()]
    assert problems == []


def test_the_catalogs_hold_exactly_the_messages_of_the_code_and_templates() -> None:
    # A message added to the code (or a page) without `pybabel extract` + `update` fails here
    found = extracted()
    assert found, "nothing extracted: is babel.cfg in the repository root?"
    for locale in i18n.LOCALES:
        held = messages(catalog(locale))
        assert sorted(found - held, key=str) == [], f"{locale}: messages missing from the catalog"
        assert sorted(held - found, key=str) == [], f"{locale}: messages the code no longer has"


def test_the_english_catalog_is_the_identity() -> None:
    assert [m.id for m in catalog("en") if m.id and m.string and m.string != m.id] == []


@pytest.mark.parametrize(
    ("asked", "cookie", "accept", "expected"),
    [
        (None, None, None, "zh_CN"),  # Chinese first
        (None, None, "en-US,en;q=0.9", "en"),
        (None, None, "fr-FR,en;q=0.5,zh;q=0.8", "zh_CN"),  # the first of the two the browser asks for
        (None, None, "de, fr", "zh_CN"),
        (None, "en", "zh-CN", "en"),  # the switch, remembered, wins over the browser
        ("zh", "en", "en", "zh_CN"),  # ?lang= wins over everything
        (None, "xx", "en;q=0", "zh_CN"),  # q=0 means "not this"
    ],
)
def test_the_language_is_the_switch_else_the_browser_else_chinese(
    asked: str | None, cookie: str | None, accept: str | None, expected: str
) -> None:
    assert i18n.negotiate(asked, cookie, accept) == expected


def test_times_for_people_are_china_time_with_the_zone_named() -> None:
    at = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    with i18n.use("zh_CN"):
        assert i18n.china_time(at) == "2026-12-01 09:00（北京时间）"
    with i18n.use("en"):
        assert i18n.china_time(at) == "2026-12-01 09:00 (China time)"


def test_a_reject_reason_names_the_row_and_the_column_in_the_reader_language() -> None:
    with i18n.use("zh_CN"):
        assert reasons.at_row(12, "手机号码", "not_mobile", {}) == "第 12 行，手机号码列：不是大陆手机号"
        assert (
            reasons.at_row(4, "姓名", "missing_value", {"field": "姓名"}) == "第 4 行，姓名列：{姓名} 没有值"
        )
        assert (
            reasons.at_row(7, "", None, None, "opted out") == "第 7 行：已退订"
        )  # stored as text by the store
    with i18n.use("en"):
        assert reasons.at_row(12, "手机号码", "not_mobile", {}) == (
            "row 12, column 手机号码: not a mainland China mobile number"
        )
    # The English of a code is what the CLI and --json have always said
    assert reasons.english("duplicate", {"row": 2}) == "duplicate of row 2"
    assert reasons.english("forbidden_keyword", {"word": "VIP"}) == "forbidden keyword 'VIP'"


def test_what_a_campaign_waits_for_is_said_in_words() -> None:
    status = {"waiting": "window", "window_opens_at": "2026-12-02T00:00:00+00:00"}
    with i18n.use("zh_CN"):
        assert labels.waiting_text(status) in (
            "等待发送时段，08:00（北京时间）开始发送",
            "等待发送时段，12-02 08:00（北京时间）开始发送",
        )
        assert labels.campaign_state("sent") == "已发出"
        assert labels.recipient_state("cancelled") == "已取消"
    with i18n.use("en"):
        assert labels.waiting_text({"waiting": "reports", "reports_due": 1200}) == (
            "Everything is sent; waiting for delivery reports (1,200 still due)"
        )
        assert labels.waiting_text({"waiting": None}) is None

"""The compose page's counter (static/textcount.js) counts as dispatcher/text.py does: both on the same
samples, the JavaScript in Debian's Chromium."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dispatcher import text
from dispatcher.vendors import entinfo
from tests.helpers import ARGS, CHROMIUM

SCRIPT = Path(__file__).resolve().parents[2] / "dispatcher" / "web" / "static" / "textcount.js"
SAMPLES = [
    "",
    "a" * 140,
    "a" * 141,
    "张" * 70,
    "张" * 71,
    "张" * 134,
    "张" * 135,
    "Hi 张三" + "x" * 66,
    "张三您好，会员日全场8折，回T退订【测试】",
    "😀" * 35,  # an emoji counts two
    "😀" * 36,
    "é" * 100,  # not ASCII: the 70/67 rule
    "{姓名}",
    "a" * 2000,  # past entinfo's limits
    "张" * 1001,
]
TEMPLATES = [
    ("{姓名}您好，{城市}门店见【测试】", {"姓名": "张三", "城市": "上海"}),
    ("{{literal}} {姓名}", {"姓名": "李四"}),
    ("{ 姓名 }先生", {"姓名": "王五"}),
    ("{未知}先生", {"姓名": "王五"}),
]


def _browser() -> object:
    if os.environ.get("CI"):
        import playwright.sync_api as sync_api

        assert Path(CHROMIUM).exists(), "Debian's chromium is missing: .ci/extra-setup installs it"
    else:
        sync_api = pytest.importorskip("playwright.sync_api")
        if not Path(CHROMIUM).exists():
            pytest.skip("Debian's chromium is not installed (.ci/extra-setup installs it)")
    return sync_api


def test_the_javascript_counter_counts_characters_and_segments_as_the_python_rules() -> None:
    sync_api = _browser()
    with sync_api.sync_playwright() as p:  # type: ignore[attr-defined]
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page()
            page.add_script_tag(content=SCRIPT.read_text(encoding="utf-8"))
            counted = page.evaluate("s => s.map(t => [smsText.length(t), smsText.segments(t)])", SAMPLES)
            rendered = page.evaluate("ts => ts.map(([t, v]) => smsText.render(t, v))", TEMPLATES)
            limits = page.evaluate(
                "([ts, a, b]) => ts.map(t => smsText.tooLong(t, a, b))",
                [SAMPLES, entinfo.MAX_SINGLE_BYTE_CHARS, entinfo.MAX_DOUBLE_BYTE_CHARS],
            )
        finally:
            browser.close()
    assert counted == [[text.length(s), text.segments(s)] for s in SAMPLES]
    # Placeholders filled as the Python renders them; an unknown one is left as written
    parsed = [text.parse_template(t) for t, _ in TEMPLATES[:3]]
    assert rendered[:3] == [
        t.render([v[f] for f in t.fields]) for t, (_, v) in zip(parsed, TEMPLATES, strict=False)
    ]
    assert rendered[3] == "{未知}先生"
    rules = (entinfo.MAX_SINGLE_BYTE_CHARS, entinfo.MAX_DOUBLE_BYTE_CHARS)
    assert limits == [
        (rules[0] if s.isascii() else rules[1]) if text.too_long(s, rules) else 0 for s in SAMPLES
    ]

"""What an account's gateway refuses, checked at upload: a ``&`` on an encrypted account, Entinfo's
length limit, forbidden words; and the packing of an encrypted trigger account (one number a request)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dispatcher import chunker
from dispatcher.config import AccountConfig
from dispatcher.contacts import ingest
from dispatcher.errors import TemplateError
from dispatcher.keywords import rules_for
from dispatcher.text import TextRules


def account(vendor: str, *, encrypted: bool = False) -> AccountConfig:
    return AccountConfig("a", vendor, "http://gw", "u", "p", encrypted=encrypted)


def csv(tmp_path: Path, *rows: tuple[str, str], name: str = "c.csv") -> Path:
    path = tmp_path / name
    path.write_text("手机号,内容\n" + "".join(f"{m},{t}\n" for m, t in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("vendor", ["webservice", "yunxin", "trigger"])
def test_given_an_encrypted_account_when_the_template_has_an_ampersand_then_a_template_error(
    tmp_path: Path, vendor: str
) -> None:
    path = csv(tmp_path, ("13900000001", "张三"))
    with pytest.raises(TemplateError, match=r"'&'.*encrypted"):
        ingest(path, "{内容}：满100&减20【店】", rules=rules_for(account(vendor, encrypted=True)))
    # A plain account sends the '&' as it is (the form is URL-encoded).
    assert len(ingest(path, "{内容}：满100&减20【店】", rules=rules_for(account(vendor))).messages) == 1


def test_given_an_encrypted_account_when_a_value_has_an_ampersand_then_its_row_is_rejected(
    tmp_path: Path,
) -> None:
    path = csv(tmp_path, ("13900000001", "张三"), ("13900000002", "A&B公司"))
    result = ingest(path, "{内容}您好【店】", rules=rules_for(account("trigger", encrypted=True)))
    assert result.messages.texts == ["张三您好【店】"]
    assert [(r.row, r.reason) for r in result.rejected] == [(3, "'&' cannot go through an encrypted method")]


def test_given_an_entinfo_account_when_a_text_is_over_its_length_then_the_row_is_rejected(
    tmp_path: Path,
) -> None:
    # Entinfo SDK API (2017) -10: above 1,000 single-byte or 500 double-byte characters.
    path = csv(
        tmp_path,
        ("13900000001", "好" * 494),  # 494 + "您好【店】" (5) = 499 characters: fine
        ("13900000002", "好" * 496),  # 501: refused
        (
            "13900000003",
            "a" * 995,
        ),  # single-byte, 995 + 5 = 1000: but "【店】" is double-byte, so 500 applies
    )
    result = ingest(path, "{内容}您好【店】", marketing=False, rules=rules_for(account("entinfo")))
    assert result.messages.rows == [2]
    assert [(r.row, r.reason) for r in result.rejected] == [
        (3, "text longer than 500 characters"),
        (4, "text longer than 500 characters"),
    ]
    ascii_only = csv(
        tmp_path, ("13900000001", "a" * 993), ("13900000002", "a" * 994), name="a.csv"
    )  # + 7: 1000, 1001
    plain = ingest(ascii_only, "{内容} [ACME]", marketing=False, rules=rules_for(account("entinfo")))
    assert plain.messages.rows == [2]
    assert [(r.row, r.reason) for r in plain.rejected] == [
        (3, "text longer than 1000 single-byte characters")
    ]
    # Characters are counted as the gateways count them: an emoji is two.
    emoji = csv(
        tmp_path, ("13900000001", "好" * 493 + "🎉"), ("13900000002", "好" * 494 + "🎉"), name="e.csv"
    )
    counted = ingest(emoji, "{内容}您好【店】", marketing=False, rules=rules_for(account("entinfo")))
    assert counted.messages.rows == [2]  # 493 + 2 + 5 = 500
    assert [(r.row, r.reason) for r in counted.rejected] == [(3, "text longer than 500 characters")]
    # Other vendors have no such rule at upload.
    assert (
        len(ingest(path, "{内容}您好【店】", marketing=False, rules=rules_for(account("yunxin"))).messages)
        == 3
    )
    with pytest.raises(TemplateError, match="longer than"):
        ingest(path, "好" * 501 + "{内容}【店】", rules=rules_for(account("entinfo")))


def test_given_keywords_in_the_rules_when_the_template_holds_one_then_a_template_error_names_it(
    tmp_path: Path,
) -> None:
    path = csv(tmp_path, ("13900000001", "张三"))
    with pytest.raises(TemplateError, match="forbidden keyword '促销'"):
        ingest(path, "{内容}，限时促销【店】", rules=TextRules(keywords=("促销",)))
    with pytest.raises(TemplateError, match="forbidden keyword '免费'"):
        ingest(path, "{内容}，免费领取【店】", keywords=["免费"])


def test_given_an_encrypted_trigger_account_when_planning_then_one_number_per_request() -> None:
    # Trigger API v1.8, 2.8: sendMsgByEncrypt takes one number (and has no personalised variant).
    mobiles = [f"139{i:08d}" for i in range(120)]
    texts = ["同一条短信【店】"] * 100 + [f"第{i}条【店】" for i in range(20)]
    plain = chunker.plan(mobiles, texts, "trigger", campaign_id=1)
    assert max(len(c.mobiles) for c in plain) == 50
    encrypted = chunker.plan(mobiles, texts, "trigger", campaign_id=1, encrypted=True)
    assert len(encrypted) == 120 and {len(c.mobiles) for c in encrypted} == {1}
    assert chunker.by_method(encrypted) == {"sendMsgByEncrypt": 120}
    assert sorted(i for c in encrypted for i in c.indexes) == list(range(120))
    # Encrypted yunxin keeps its 500-number encrypted batches.
    assert (
        len(chunker.plan(mobiles, ["同一条短信【店】"] * 120, "yunxin", campaign_id=1, encrypted=True)) == 1
    )


def test_given_a_keyword_written_full_width_or_in_another_case_then_it_is_still_refused_naming_the_word(
    tmp_path: Path,
) -> None:
    # The gateways' word filters fold full-width forms and letter case: "ＶＩＰ" and "vip" are "VIP".
    path = csv(tmp_path, ("13900000001", "张三"), ("13900000002", "ｖｉｐ会员"), ("13900000003", "Vip会员"))
    rules = TextRules(keywords=("VIP",))
    result = ingest(path, "{内容}您好，会员日8折【店】", marketing=False, rules=rules)
    assert result.messages.rows == [2]
    assert [(r.row, r.reason) for r in result.rejected] == [
        (3, "forbidden keyword 'VIP'"),
        (4, "forbidden keyword 'VIP'"),
    ]
    with pytest.raises(TemplateError, match="forbidden keyword 'VIP'"):
        ingest(path, "{内容}，尊敬的ＶＩＰ客户【店】", rules=rules)


@pytest.mark.parametrize(
    ("vendor", "leading_ok"), [("trigger", True), ("entinfo", True), ("webservice", False), ("yunxin", False)]
)
def test_given_a_leading_signature_when_checked_then_trigger_and_entinfo_take_it_and_the_others_want_it_last(
    tmp_path: Path, vendor: str, leading_ok: bool
) -> None:
    # Only the webservice and yunxin documents require the 【signature】 last (their -5 says so); the
    # trigger and entinfo documents do not, and their public clients write 【品牌】内容.
    path = csv(tmp_path, ("13912345678", "张三"), ("13912345679", "【品牌】李四"))
    fixed = ingest(path, "【品牌】{内容}您好，回T退订", rules=rules_for(account(vendor)))
    assert bool(fixed.warnings and "signature" in fixed.warnings[0]) is not leading_ok
    assert len(fixed.messages.texts) == 2
    from_value = ingest(path, "回T退订 {内容}", rules=rules_for(account(vendor)))
    assert from_value.messages.texts == []  # the words come first, the value last: no 【...】 at either end
    values_first = ingest(path, "{内容}", rules=rules_for(account(vendor)))
    assert values_first.messages.texts == (["【品牌】李四"] if leading_ok else [])
    # a text that starts with a value: its own 【...】 counts there only where a leading one does
    assert [r.code for r in values_first.rejected] == ["no_signature"] * (1 if leading_ok else 2)
    last = ingest(path, "{内容}您好，回T退订【品牌】", rules=rules_for(account(vendor)))
    assert len(last.messages.texts) == 2 and not last.warnings  # the signature last: everyone takes it

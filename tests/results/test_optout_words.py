import pytest

from dispatcher.results.optout_words import DEFAULT_OPTOUT_WORDS, is_optout, optout_matcher

WORDS = optout_matcher(DEFAULT_OPTOUT_WORDS)


@pytest.mark.parametrize(
    "reply", ["T", "t", "Ｔ", " td ", "ＴＤ", "退订", "退订。", "n", "取消", "【TD】", "T!"]
)
def test_given_an_optout_word_in_any_case_or_width_then_it_opts_out(reply: str) -> None:
    assert is_optout(reply, WORDS)


@pytest.mark.parametrize("reply", ["Thanks", "好的", "不要取消订单", "TDD", "", "退订了吗好"])
def test_given_an_ordinary_reply_then_it_does_not_opt_out(reply: str) -> None:
    assert not is_optout(reply, WORDS)


def test_given_configured_words_then_only_those_count() -> None:
    words = optout_matcher(["STOP", "０"])
    assert is_optout("stop", words)
    assert is_optout("0", words)
    assert not is_optout("T", words)

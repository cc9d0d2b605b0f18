"""Opt-out words in replies (T, TD, 退订, N, 取消 ...), case and full-width insensitive."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from dispatcher.config import DEFAULT_OPTOUT_WORDS

# Punctuation people type around the word: "退订。", "T!", "【TD】".
_STRIP = " \t\r\n.。,，!！?？~～、'\"“”‘’()（）【】[]"


def fold(text: str) -> str:
    """NFKC (full-width Ｔ → T, full-width space → space), upper case, surrounding punctuation off."""
    return unicodedata.normalize("NFKC", text).upper().strip(_STRIP)


def optout_matcher(words: Iterable[str] = DEFAULT_OPTOUT_WORDS) -> frozenset[str]:
    return frozenset(fold(w) for w in words if fold(w))


def is_optout(text: str, words: frozenset[str]) -> bool:
    """A reply opts out when, folded, it *is* one of the words (so "Thanks" or "不要取消订单" do not)."""
    return fold(text) in words

"""Message text rules: template rendering, billing segments, signature, GB2312, keywords, opt-out hint.

All pure functions of strings. A template names spreadsheet columns in braces, ``{姓名}您好……【签名】``;
``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from dispatcher import reasons
from dispatcher.errors import TemplateError
from dispatcher.i18n import N_
from dispatcher.vendors.crypto import ENCRYPTED_CHARSET, unencodable_characters

CellValue = str | int | float | bool | date | datetime | time | timedelta | None

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_SIGNATURE = re.compile(r"【[^【】]+】\s*$")
_LEADING_SIGNATURE = re.compile(r"【[^【】]+】")
# How marketing texts tell people to opt out: 回T退订, 退订回T, 拒收请回复R, 回复TD退订, ...
_OPT_OUT_HINT = re.compile(r"退订|拒收|unsubscribe|reply\s+stop", re.I)

SINGLE_SEGMENT = 70  # characters in one segment (Entinfo's rule, used for every vendor)
SINGLE_SEGMENT_ASCII = 140
MULTI_SEGMENT = 67  # characters per segment once a text needs several
# No gateway takes a longer text (Entinfo's 1,000 single-byte characters is the most any allows): a
# template or a rendered text beyond these is refused before it costs memory. A template that repeats a
# long value thousands of times would otherwise render gigabytes from a small upload.
MAX_TEXT_CHARS = 1000
MAX_TEMPLATE_CHARS = 2000  # the template as typed, placeholders' names included
MAX_TEMPLATE_FIELDS = 50  # placeholders in one template (a sheet has at most max_sheet_columns columns)


@dataclass(frozen=True)
class Template:
    """A parsed template: ``literals[0] + value(fields[0]) + literals[1] + ...``."""

    source: str
    literals: tuple[str, ...]
    fields: tuple[str, ...]

    def render(self, values: Sequence[str]) -> str:
        """The text with ``values`` (display strings, aligned with :attr:`fields`) filled in."""
        parts = [self.literals[0]]
        for value, literal in zip(values, self.literals[1:], strict=True):
            parts.append(value)
            parts.append(literal)
        return "".join(parts)

    @property
    def format_string(self) -> str:
        """A ``str.format`` string with positional fields: the fastest way to render many rows."""
        out = [self.literals[0].replace("{", "{{").replace("}", "}}")]
        for i, literal in enumerate(self.literals[1:]):
            out.append(f"{{{i}}}")
            out.append(literal.replace("{", "{{").replace("}", "}}"))
        return "".join(out)

    @property
    def static_text(self) -> str:
        """The template's own words, without the placeholders."""
        return "".join(self.literals)


def parse_template(source: str) -> Template:
    """Split ``source`` into literals and field names; raises :class:`TemplateError` on bad braces."""
    if not source.strip():
        raise TemplateError.say(N_("the template is empty"))
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateError.say(
            N_("the template has %(count)s characters; the limit is %(limit)s"),
            count=f"{len(source):,}",
            limit=f"{MAX_TEMPLATE_CHARS:,}",
        )
    literals: list[str] = []
    fields: list[str] = []
    current: list[str] = []
    pos = 0
    for m in _TOKEN.finditer(source):
        current.append(source[pos : m.start()])
        pos = m.end()
        token = m.group(0)
        if token in ("{{", "}}"):
            current.append(token[0])
        elif token in ("{", "}"):
            raise TemplateError.say(
                N_("unmatched %(token)r at position %(position)s in the template (use %(double)s)"),
                token=token,
                position=m.start(),
                double=token * 2,
            )
        else:
            name = (m.group(1) or "").strip()
            if not name:
                raise TemplateError.say(
                    N_("empty placeholder {} at position %(position)s in the template"), position=m.start()
                )
            literals.append("".join(current))
            current = []
            fields.append(name)
    current.append(source[pos:])
    literals.append("".join(current))
    if len(fields) > MAX_TEMPLATE_FIELDS:
        raise TemplateError.say(
            N_("the template has %(count)s placeholders; the limit is %(limit)s"),
            count=f"{len(fields):,}",
            limit=MAX_TEMPLATE_FIELDS,
        )
    return Template(source, tuple(literals), tuple(fields))


# What a Chinese input method types for braces: sent as they are, never a placeholder.
_FULL_WIDTH = re.compile(r"｛([^｛｝{}]*)｝")


def full_width_placeholders(template: Template) -> list[str]:
    """The names written in full-width braces (``｛姓名｝``) in the template's own words."""
    return [m.group(1).strip() for m in _FULL_WIDTH.finditer(template.static_text) if m.group(1).strip()]


def check_fields(template: Template, headers: Sequence[str], *, where: str = "") -> None:
    """Raise :class:`TemplateError` if a placeholder names no column (listing the columns there are), or
    if a column is named in full-width braces ``｛姓名｝`` (it would be sent as it is, unfilled)."""
    known = set(headers)
    for name in full_width_placeholders(template):
        if name in known:
            raise TemplateError.say(
                N_(
                    "%(where)s｛%(name)s｝ is written with full-width braces and would be sent as it is: write {%(name)s}"
                ),
                where=where,
                name=name,
            )
    unknown = [f for f in dict.fromkeys(template.fields) if f not in known]
    if unknown:
        names = ", ".join("{" + f + "}" for f in unknown)
        columns = ", ".join(h for h in headers if h)
        raise TemplateError.say(
            N_("%(where)sunknown placeholder %(names)s; the columns are: %(columns)s"),
            where=where,
            names=names,
            columns=columns,
        )


def display(value: CellValue) -> str:
    """A cell as a person reads it in the sheet: 462 not 462.0, dates as dates; '' for empty."""
    if isinstance(value, str):
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return format(value, ".15g")  # Excel shows 15 significant digits: 0.1+0.2 reads 0.3
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M:%S" if value.second else "%H:%M")
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return str(value)


def length(text: str) -> int:
    """Characters as the gateways count them (UTF-16 units: an emoji counts two)."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def segments(text: str) -> int:
    """Billing segments: ≤70 characters = 1, else 67 each; pure single-byte text ≤140 = 1."""
    n = length(text)
    if n <= SINGLE_SEGMENT or (n <= SINGLE_SEGMENT_ASCII and text.isascii()):
        return 1
    return -(-n // MULTI_SEGMENT)


def has_signature(text: str, *, leading: bool = False) -> bool:
    """The text ends with a ``【签名】`` (yunxin: the last character must be ``】``); with ``leading``, or
    starts with one (trigger's and entinfo's documents do not say where it goes; their public clients
    put ``【品牌】`` first)."""
    if leading and _LEADING_SIGNATURE.match(text):
        return True
    return _SIGNATURE.search(text) is not None and text.rstrip() == text


def gb2312_problem(text: str) -> str:
    """The characters an encrypted method cannot carry ('' if it can). The gateways' "GB2312" is .NET's
    code page 936 (GBK), which has 喆, 镕, 珺, 昇 and other name characters GB2312 proper lacks."""
    try:
        text.encode(ENCRYPTED_CHARSET)
    except UnicodeEncodeError:
        return unencodable_characters(text)
    return ""


# Full-width forms of ASCII (U+FF01-FF5E) and the ideographic space, as their ASCII twins.
_HALF_WIDTH = {**{c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}, 0x3000: 0x20}
_FULL_WIDTH_ALNUM = re.compile("[０-９Ａ-Ｚａ-ｚ]")


def fold(text: str) -> str:
    """``text`` as a gateway's word filter compares it: letter case, and full-width letters and digits,
    folded away (``ＶＩＰ`` and ``Vip`` are ``vip``), so that such a spelling does not slip a forbidden word
    past. Fast for the common text, whose only full-width characters are Chinese punctuation."""
    if _FULL_WIDTH_ALNUM.search(text):
        text = text.translate(_HALF_WIDTH)
    return text.casefold()


def forbidden_keyword(text: str, keywords: Iterable[str]) -> str:
    """The first forbidden keyword in ``text``, or '': as written, or as :func:`fold` spells both."""
    return _find_keyword(text, tuple((k, fold(k)) for k in keywords if k))


def _find_keyword(text: str, keywords: tuple[tuple[str, str], ...]) -> str:
    """``keywords``: (keyword, its fold) pairs."""
    folded = ""
    for keyword, folded_keyword in keywords:
        if keyword in text:
            return keyword
        folded = folded or fold(text)
        if folded_keyword in folded:
            return keyword
    return ""


def too_long(text: str, limits: tuple[int, int]) -> bool:
    """Longer than ``limits[0]`` characters of single-byte text, or ``limits[1]`` with any double-byte one,
    counted as the gateways count (:func:`length`: an emoji is two)."""
    return length(text) > (limits[0] if text.isascii() else limits[1])


@dataclass(frozen=True)
class TextRules:
    """What an account's gateway refuses in a text, checked at upload so that nothing is sent that would
    be refused: forbidden words (the gateway answers -6/-24/-54), a ``&`` in the text of an encrypted
    account (the encrypted plaintext is ``userPass=..&DesNo=..&Msg=..``: the gateway would cut the text
    there), and a length limit (Entinfo's -10)."""

    keywords: tuple[str, ...] = ()
    encrypted: bool = False
    max_chars: tuple[int, int] | None = None  # (single-byte text, text with double-byte characters)
    # The gateway takes a leading 【signature】 too (trigger, entinfo); else it must come last.
    signature_first: bool = False
    _folded: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "_folded", tuple((k, fold(k)) for k in self.keywords if k))

    @property
    def per_text(self) -> bool:
        """Whether rendered texts need checking at all (the common case needs none)."""
        return bool(self.keywords) or self.encrypted or self.max_chars is not None

    def template_problem(self, template: Template) -> str:
        """Why the template's own words can never be sent ('' if they can); a value is checked per text."""
        reason = self.template_reason(template)
        return reason[0] % reason[1] if reason is not None else ""

    def template_reason(self, template: Template) -> tuple[str, dict[str, Any]] | None:
        """:meth:`template_problem` as data: an English msgid and its parameters (None if it can be sent)."""
        for literal in template.literals:
            if keyword := _find_keyword(literal, self._folded):
                return N_("the template contains the forbidden keyword '%(word)s'"), {"word": keyword}
            if self.encrypted and "&" in literal:
                return N_(
                    "the template contains '&', which an encrypted account cannot send "
                    "(the gateway would cut the text there)"
                ), {}
        if self.max_chars is not None and too_long(template.static_text, self.max_chars):
            single, double = self.max_chars
            if template.static_text.isascii():
                return N_(
                    "the template alone is longer than the gateway takes (%(limit)s single-byte characters)"
                ), {"limit": single}
            return N_("the template alone is longer than the gateway takes (%(limit)s characters)"), {
                "limit": double
            }
        return None

    def text_problem(self, text: str) -> str:
        """Why one rendered text cannot be sent, in a few words of English ('' if it can)."""
        reason = self.text_reason(text)
        return reasons.english(*reason) if reason is not None else ""

    def text_reason(self, text: str) -> tuple[str, dict[str, Any]] | None:
        """Why one rendered text cannot be sent, as a reason code and its parameters (``dispatcher.reasons``);
        None if it can."""
        if keyword := _find_keyword(text, self._folded):
            return "forbidden_keyword", {"word": keyword}
        if self.encrypted and "&" in text:
            return "ampersand", {}
        if self.max_chars is not None and too_long(text, self.max_chars):
            single, double = self.max_chars
            if text.isascii():
                return "too_long_single_byte", {"limit": single}
            return "too_long", {"limit": double}
        return None


def has_opt_out_hint(text: str) -> bool:
    """A marketing text tells people how to stop receiving them (回T退订 or similar)."""
    return _OPT_OUT_HINT.search(text) is not None

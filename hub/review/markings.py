"""Classification markings (密级标志) and mentions of classified matter.

A **marking** is the label a classified document carries at its head (GB/T
9704: 密级和保密期限 such as ``机密★1年`` on a line of its own), or a handling
label (内部资料, 注意保密, …). It holds the record. A marking is

1. a level word (绝密, 机密, 秘密, 内部) joined to a star (★ ☆ ✩ ✪ ✭ ✮ ⭐ or
   ``*``), on either side, with or without a period after it: ``秘密★1年``,
   ``机密★10年``, ``绝密★长期``, ``绝密★启用前``, ``★秘密``, ``秘密★``, ``内部★``;
   anywhere in the text;
2. a marking phrase (绝密, 机密, 秘密, 内部, 国家秘密, 工作秘密, 内部资料, 内部文件,
   注意保密, 严禁外传) that stands apart from running text:

   - alone on its line (a title or summary is one line; a body has a line per
     block element and ``<br>``), brackets and punctuation around it allowed;
   - in brackets of its own: ``【内部】``, ``（内部）``, ``[机密]``, ``〔秘密〕``;
   - at the head of a line and followed by a space: ``内部资料 注意保存``,
     ``机密 特急`` (Chinese prose never puts a space after a word).

A **mention** is any other 绝密, 机密, 秘密, 国家秘密, 工作秘密, 内部资料, 内部文件,
注意保密 or 严禁外传 in running text: ``依法确定为国家秘密的政府信息不予公开``,
``严禁将内部资料上传互联网``. Published rules and 保密工作 news say these words all
the time, so a mention is reported for the reviewer with severity ``mention``
and does not hold the record. Not even mentions: anything inside 《…》 (the
title of a law, such as 《中华人民共和国保守国家秘密法》), 商业秘密 and 商业机密
(trade secrets, not state secrets), 机密性 (confidentiality of data), and the
bare word 内部 in running text (内部管理, 内部审计).

Spaces and tabs may stand between the characters of a marking (``机 密★1年``,
``秘　密`` with an ideographic space): writing it spaced out does not hide it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_GAP = "[ \t]*"
_STARS = "[★☆✩✪✭✮⭐*]"
_LEVELS = ("绝密", "机密", "秘密", "内部")
PHRASES = ("国家秘密", "工作秘密", "内部资料", "内部文件", "注意保密", "严禁外传", *_LEVELS)
MENTIONS = tuple(phrase for phrase in PHRASES if phrase != "内部")
_OPEN = r"[(\[【〔〖「『<]"
_CLOSE = r"[)\]】〕〗」』>]"
_EDGE = r"[ \t()\[\]【】〔〕〖〗「」『』<>:;,.。、!?·—-]*"


def _spaced(word: str) -> str:
    return _GAP.join(map(re.escape, word))


def _either(words: tuple[str, ...]) -> str:
    return "|".join(_spaced(word) for word in sorted(words, key=len, reverse=True))


_LEVEL = f"(?:{_either(_LEVELS)})"
_PHRASE = f"(?:{_either(PHRASES)})"
_PERIOD = f"(?:{_GAP}(?:[0-9一二三四五六七八九十]+{_GAP}(?:个月|年)|长期|启用前|解密前))?"
_MARKINGS = (
    ("starred", re.compile(f"{_STARS}{_GAP}{_LEVEL}(?:{_GAP}{_STARS})?{_PERIOD}")),
    ("starred", re.compile(f"{_LEVEL}{_GAP}{_STARS}{_PERIOD}")),
    ("alone", re.compile(f"^{_EDGE}(?P<m>{_PHRASE}){_EDGE}$", re.MULTILINE)),
    ("bracketed", re.compile(f"{_OPEN}{_GAP}(?P<m>{_PHRASE}){_GAP}{_CLOSE}")),
    ("heading", re.compile(f"^[ \t]*(?P<m>{_PHRASE})[ \t]+(?=\\S)", re.MULTILINE)),
)
_MENTION = re.compile(f"(?:{_either(MENTIONS)})(?!{_GAP}性)")
_HINT = re.compile("[密部传]")  # every phrase has one of these
_BOOK_TITLE = re.compile("《[^《》\n]*》")
HOW = {
    "starred": "",
    "alone": " on a line of its own",
    "bracketed": " in brackets",
    "heading": " at the head of a line",
}


def find_markings(text: str) -> Iterator[tuple[int, int, str]]:
    """``(start, end, how)`` of each marking in folded ``text``, then ``"mention"`` spans."""
    if not _HINT.search(text):
        return
    found: list[tuple[int, int, str]] = []
    for how, pattern in _MARKINGS:
        for match in pattern.finditer(text):
            start, end = match.span("m") if "m" in pattern.groupindex else match.span()
            if not _overlaps(start, end, found):
                found.append((start, end, how))
    yield from sorted(found)
    titles = [match.span() for match in _BOOK_TITLE.finditer(text)]
    for match in _MENTION.finditer(text):
        start, end = match.span()
        inside_title = any(first < start and end < last for first, last in titles)
        trade_secret = start >= 2 and text.startswith("商业", start - 2)
        if not inside_title and not trade_secret and not _overlaps(start, end, found):
            yield start, end, "mention"


def _overlaps(start: int, end: int, spans: list[tuple[int, int, str]]) -> bool:
    return any(start < other_end and other_start < end for other_start, other_end, _ in spans)

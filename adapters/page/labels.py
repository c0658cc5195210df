"""What a metadata label means: ``信息索引号``, ``索 引 号：`` and ``【编号】`` are one field.

Government sites label the same 政府信息公开 field many ways: a county template
writes ``信息索引号``, a department ``索　引　号``, another ``[发布机构]`` or
``发文机关：``. ``field_of`` reads a label by meaning: it folds full-width forms
(NFKC), drops every space, the colon and brackets around it, then looks the
label up in ``SYNONYMS``, first as written and then without a ``政府信息`` or
``信息`` prefix. ``pairs_in`` splits one line that holds several pairs
(``来源：市政府　时间：2022-01-05``) at the labels it knows, so a value never
carries the next label's text.
"""

from __future__ import annotations

import functools
import re
import unicodedata

# Field -> the labels that mean it (spaces, colons, brackets and 信息 prefixes removed).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "index_number": ("索引号", "索引", "索取号", "编号", "信息编号", "索引编号"),
    "title": ("标题", "名称", "文件名称", "文件标题", "题名", "文章标题"),
    "issuers": (
        *("发布机构", "发文机关", "发文单位", "发文机构", "发布单位", "发布部门"),
        *("发布主体", "公开主体", "制发机关", "成文机关", "公开责任部门", "责任部门"),
        "发布者",
    ),
    "source": ("来源", "文章来源", "稿件来源"),
    "created": (
        *("成文日期", "发文日期", "生成日期", "成文时间", "形成日期", "印发日期"),
        *("签发日期", "制发日期", "产生日期", "生成时间", "发文时间", "印发时间"),
    ),
    "published": (
        *("发布日期", "发布时间", "公开日期", "公开时间", "公布日期", "公布时间"),
        *("发表时间", "发表日期", "日期", "时间", "上传时间"),
    ),
    # Not 字号 alone: 字号：大 中 小 is the font-size switch of many templates.
    "doc_number": ("发文字号", "文号", "文件编号", "发文号", "文件字号"),
    "keywords": ("主题词", "关键词", "关键字"),
    "topic": ("主题分类", "分类", "主题", "类别", "组配分类", "所属主题"),
    "validity": ("有效性", "时效", "时效性", "效力状态", "效力", "是否有效", "有效状态"),
    "mode": ("公开方式", "公开形式"),
    "audience": ("公开范围", "公开对象"),
    "duration": ("公开时限", "公开期限"),
}
LABELS: dict[str, str] = {label: name for name, labels in SYNONYMS.items() for label in labels}
"""Label (normal form) -> field; ``field_of`` reads a label as written."""

_PREFIXES = ("政府信息", "信息")
_DROPPED = re.compile(r"[\s\u3000:：\[\]【】（）()〔〕<>《》「」『』·•*＊]+")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SPACE = " \t\r\n\xa0\u3000"
_OPENING = " \t\r\n\xa0\u3000[【(（"
_BRACKETED = re.compile(
    r"[【\[]\s*([\u4e00-\u9fff][\u4e00-\u9fff \u3000]{0,10}?)\s*[】\]]\s*(?![:：])"
)
_LONGEST = 16  # characters of a label as written, spaces included


@functools.lru_cache(maxsize=4096)
def field_of(label: str) -> str | None:
    """The field a label names (``信息索引号：`` → ``index_number``), or None."""
    text = _bare(label)
    if not text or len(text) > 10:
        return None
    if text in LABELS:
        return LABELS[text]
    for prefix in _PREFIXES:
        if text.startswith(prefix) and text[len(prefix) :] in LABELS:
            return LABELS[text[len(prefix) :]]
    return None


def pairs_in(text: str) -> list[tuple[str, str]]:
    """``(field, value)`` of each known ``label：value`` in ``text``, in order.

    The text must start with a label (spaces and brackets before it allowed);
    otherwise the answer is empty. A value runs to the next known label, so
    ``来源：市政府 时间：2022-01-05`` gives two pairs. Colons after unknown words
    (``访问量：``) stay inside the value they follow.
    """
    text = _BRACKETED.sub(_bracketed, text)
    starts = _label_starts(text)
    if not starts or starts[0][2] is None or text[: starts[0][0]].strip(_OPENING):
        return []
    found: list[tuple[str, str]] = []
    for number, (_start, after, name) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(text)
        if name is not None:
            found.append((name, text[after:end]))
    return found


def _bracketed(match: re.Match[str]) -> str:
    """``【索引号】`` as ``索引号：`` when it is a known label (a value follows it, no colon)."""
    return f"{match.group(1)}：" if field_of(match.group(1)) else match.group(0)


def _label_starts(text: str) -> list[tuple[int, int, str | None]]:
    """(label start, value start, field) of every known label followed by a colon, and
    (…, None) of an unknown one set off by spaces (``　　浏览次数：``), which ends a value."""
    starts: list[tuple[int, int, str | None]] = []
    for colon in re.finditer(r"[:：]", text):
        position = colon.start()
        if starts and position < starts[-1][1]:
            continue
        begin = position
        while begin > 0 and position - begin < _LONGEST and _in_label(text[begin - 1]):
            begin -= 1
        for start in range(begin, position):  # the longest known label ending at the colon
            if not _CJK.match(text[start]):
                continue
            name = field_of(text[start:position])
            # Inside a run of words only a long label counts: 处罚决定书编号 is no 编号.
            glued = (
                start > begin
                and _CJK.match(text[start - 1])
                and len(_bare(text[start:position])) < 4
            )
            if name is not None and not glued:
                starts.append((_bracket_start(text, start), colon.end(), name))
                break
        else:
            run = text[begin:position].rstrip(_SPACE)
            word = re.split(r"[\s\xa0\u3000]+", run)[-1]
            spaced = len(word) < len(run) or begin == 0 or text[begin - 1] in _SPACE
            if starts and spaced and 2 <= len(word) <= 8 and _CJK.match(word[0]):
                starts.append((begin + len(run) - len(word), colon.end(), None))
    return starts


def _bare(label: str) -> str:
    return _DROPPED.sub("", unicodedata.normalize("NFKC", label))


def _in_label(char: str) -> bool:
    return bool(_CJK.match(char)) or char in " \t\xa0\u3000[]【】()（）"


def _bracket_start(text: str, start: int) -> int:
    while start > 0 and text[start - 1] in "[【(（":
        start -= 1
    return start


def is_label(text: str) -> bool:
    """Whether ``text`` is a label alone, with nothing after it (``发布机构：``, ``【来源】``)."""
    stripped = text.strip(" \t\r\n\xa0\u3000")
    if not stripped:
        return False
    if stripped[-1] in ":：":
        return bool(_CJK.search(stripped)) and len(stripped) <= _LONGEST
    return field_of(stripped) is not None and stripped[0] in "[【"

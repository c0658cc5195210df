"""Search text and terms: what the search index keeps of a record, cut the way a query is.

Index terms are what CJK search engines use: every character and every pair of
adjacent characters of a run of CJK characters (Chinese has no spaces between
words), each Latin word and each digit run whole, and the document number
(发文字号, normal form) and index number (索引号, the standard ``indexNumber`` or a
site's own ``localIndexNumber``) as whole tokens. Each term is
stored as a 32-bit hash (CRC-32) in an ``integer[]`` under GIN.

Text and queries share one normalisation (``normalise``) and one tokenizer, so
the index (``hub.store.search.index``) and the query (``hub.store.search.query``)
always agree on what a term is.

One script: the normalisation folds Traditional characters to Simplified
(``fold_script``), so 國務院 finds 国务院 and 防风 finds 防風. The folding is one
character at a time, from OpenCC's Hong Kong, Taiwan and standard Traditional
→ Simplified profiles in turn (``hk2s``, ``tw2s``, ``t2s``: 綫, 裏, 峯 and 著 fold
as well as 風), never OpenCC's phrase conversion: a phrase converts according to
its neighbours, so a word converted on its own (a query) could differ from the
same word converted inside a text (a record), and a substring search needs
fold(a + b) = fold(a) + fold(b). A character whose Simplified form is more than
one character is left as it is. Changing what ``normalise`` does changes what the
index holds: bump ``INDEX_VERSION`` and add a reindex step (``hub.store.search.schema``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import opencc
from lxml import etree

from hub.records.model import NS
from hub.records.safe_xml import parse_untrusted

INDEX_VERSION = 2  # 1: NFKC and lower case; 2: and Traditional folded to Simplified
FOLDING_PROFILES = ("hk2s.json", "tw2s.json", "t2s.json")
MAX_CONTENT = 100_000  # characters of summary and body indexed per record; the rest is not

_CJK = (
    "\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3040-\u30ff\u3400-\u4dbf"
    "\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
)
_TOKENS = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<num>\d+)|(?P<word>(?:(?![{_CJK}])[^\W\d_])+)")
_YEAR_IN_BRACKETS = re.compile(r"[\[(【〔〖]([0-9]{4})[\])】〕〗]")  # as hub.codes
_SERIAL_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9]+号)")
_SPACES = re.compile(r"\s+")
_WHOLE = "\x01"  # prefix of whole-number tokens: never part of normalised text
_BLOCKS = frozenset(
    ("p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr", "td", "th", "br", "table")
) | {"ul", "ol", "blockquote", "pre"}


def normalise(text: str) -> str:
    """Searchable form of text: NFKC, lower case, Simplified characters (``fold_script``),
    〔year〕 brackets, one space between runs."""
    text = fold_script(unicodedata.normalize("NFKC", text).lower())
    text = _SERIAL_LEADING_ZEROS.sub("", _YEAR_IN_BRACKETS.sub(r"〔\1〕", text))
    return _SPACES.sub(" ", text).strip()


def fold_script(text: str) -> str:
    """``text`` with each Traditional (standard, Hong Kong or Taiwan) character in its
    Simplified form; other characters as they are. Length and positions are kept."""
    table, traditional = _folding()
    found = traditional.intersection(text)
    if len(found) > 64:
        return text.translate(table)
    for char in found:  # most texts have none: a few replaces cost less than a translation
        text = text.replace(char, table[ord(char)])
    return text


def fold_char(char: str) -> str:
    """One character folded as ``fold_script`` folds it."""
    return _folding()[0].get(ord(char), char)


@functools.cache
def _folding() -> tuple[Mapping[int, str], frozenset[str]]:
    """The folding table (code point → Simplified character) and the characters it
    changes.

    Made once per process (about 0.15 s) by converting every CJK character, one per
    line, through the profiles in turn."""
    chars = [chr(c) for start, end in _FOLD_RANGES for c in range(start, end + 1)]
    folded = "\n".join(chars)
    for profile in FOLDING_PROFILES:
        folded = opencc.OpenCC(profile).convert(folded)
    table = {
        ord(char): to
        for char, to in zip(chars, folded.split("\n"), strict=True)
        if to != char and len(to) == 1
    }
    # Close the table, so that folding twice changes nothing (a chain a → b → c).
    for code, to in table.items():
        while ord(to) in table and table[ord(to)] != to:
            to = table[ord(to)]
        table[code] = to
    return table, frozenset(map(chr, table))


_FOLD_RANGES = (  # unified ideographs and their extensions, radicals, compatibility forms
    (0x2E80, 0x2FDF),
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x323AF),
)


@functools.lru_cache(maxsize=1 << 16)  # common characters and bigrams recur in every record
def term_id(term: str) -> int:
    """The 32-bit signed hash a term is stored as (CRC-32: stable across processes)."""
    value = zlib.crc32(term.encode("utf-8"))
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def text_terms(text: str) -> set[str]:
    """Index terms of normalised text: CJK characters and bigrams, words, digit runs."""
    terms: set[str] = set()
    for match in _TOKENS.finditer(text):
        run = match.group()
        if match.lastgroup == "cjk":
            terms.update(run)
            terms.update([run[i : i + 2] for i in range(len(run) - 1)])
        else:
            terms.add(run)
    return terms


def query_terms(part: str) -> list[str]:
    """The fewest terms that a record holding ``part`` must have: bigrams of CJK runs
    (a lone CJK character stands for itself), words and digit runs whole."""
    terms: list[str] = []
    for match in _TOKENS.finditer(part):
        run = match.group()
        if match.lastgroup == "cjk" and len(run) > 1:
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        else:
            terms.append(run)
    return list(dict.fromkeys(terms))


def whole_number_token(value: str) -> str:
    """The whole token of a document or index number, already normalised."""
    return _WHOLE + value


@dataclass(frozen=True, slots=True)
class IndexedText:
    heading: str
    content: str
    validity: str | None
    heading_terms: list[int]
    terms: list[int]


def indexed_text(
    title: str, doc_number_norm: str | None, index_number: str | None, xml: str, where: str
) -> IndexedText:
    """What ``search_docs`` keeps of a record: normalised text and its term hashes.

    A local index number (``localIndexNumber``, read from ``xml``) is a number of the
    heading like the standard one: a query for ``PZ00102-1700-2022-00034`` finds it.
    """
    summary, body, validity, local_number = _xml_text(xml, where)
    found = (doc_number_norm, index_number, local_number)
    numbers = [normalise(n) for n in found if n]
    heading = "\n".join([normalise(title), *numbers])
    content = normalise(f"{summary}\n{body}")[:MAX_CONTENT]
    head = text_terms(heading) | {whole_number_token(n) for n in numbers}
    heading_terms = sorted({term_id(t) for t in head})
    terms = sorted(set(heading_terms) | {term_id(t) for t in text_terms(content)})
    return IndexedText(heading, content, validity, heading_terms, terms)


def written_content(xml: str, where: str) -> str:
    """A stored record's summary and body text as written (not normalised): the text
    that snippets are cut from."""
    summary, body, _, _ = _xml_text(xml, where)
    return f"{summary}\n{body}"[:MAX_CONTENT]


def _xml_text(xml: str, where: str) -> tuple[str, str, str | None, str | None]:
    """Summary, body text (blocks on lines of their own), validity and local index number
    of a stored record."""
    root = parse_untrusted(xml.encode("utf-8"), where).getroot()
    summary = root.findtext(f"{{{NS}}}summary") or ""
    local_number = root.findtext(f"{{{NS}}}localIndexNumber")
    validity = root.findtext(f"{{{NS}}}validity")
    body = root.find(f"{{{NS}}}body")
    parts: list[str] = []
    if body is not None:
        for event, element in etree.iterwalk(body, events=("start", "end")):
            block = etree.QName(element).localname in _BLOCKS
            if event == "start":
                parts.append("\n" if block else "")
                parts.append(element.text or "")
            else:
                parts.append("\n" if block else "")
                if element is not body:
                    parts.append(element.tail or "")
    return summary, "".join(parts), validity, local_number

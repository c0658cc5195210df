"""Bytes of a feed → text, whatever its server and its author said about the encoding.

Chinese government feeds are often GB2312 or GBK, sometimes Big5, UTF-16 from
Windows tools, and now and then labelled with a charset they are not in. The
encoding is decided as RFC 7303 (section 3) says, in this order:

1. a byte-order mark (UTF-8, UTF-16 or UTF-32) wins over everything;
2. the ``charset`` of the HTTP ``Content-Type``, when Python knows it;
3. the encoding that the first bytes show (XML 1.0 appendix F: ``<?xml`` in
   UTF-16 or UTF-32 without a mark);
4. the ``encoding`` of the XML declaration;
5. UTF-8.

Unlike RFC 3023 (and feedparser, which follows it), ``text/xml`` without a
charset is not read as US-ASCII: RFC 7303 dropped that rule, and Chinese sites
serve GB2312 feeds as ``text/xml`` every day.

Labels are read as their supersets (GB2312 and GBK as GB18030, Big5 as
Big5-HKSCS, ISO-8859-1 and US-ASCII as Windows-1252, as browsers do), so a feed
that uses one character beyond its label still decodes. When the chosen
encoding does not fit the bytes, UTF-8, GB18030, Big5 and Windows-1252 are
tried in turn and the document is reported as mislabelled.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "hz-gb-2312": "gb18030",
    "big5": "big5hkscs",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
}
FALLBACKS = ("utf-8", "gb18030", "big5hkscs", "cp1252")

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE, whose mark it starts with
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_SNIFF = (  # the first four bytes of "<?" in each wide encoding (XML 1.0 appendix F)
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<\x00?", "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),
)
_DECLARED = re.compile(rb"""^<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:\-]{1,40})["']""")
_DECLARATION = re.compile(r"^\s*<\?xml[^>]{0,300}?\?>")
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class Decoded:
    """A feed's text, the codec that read it, and whether its label was wrong."""

    text: str
    encoding: str
    mislabelled: str | None = None  # the label that did not fit, when one did not


def decode_feed(body: bytes, http_charset: str | None = None) -> Decoded:
    """The text of ``body`` by the precedence above; never fails (Windows-1252 reads anything)."""
    bom = next(((mark, codec) for mark, codec in _BOMS if body.startswith(mark)), None)
    if bom is not None:
        label, data = bom[1], body[len(bom[0]) :]
    else:
        label, data = _label(body, http_charset), body
    codec = _codec(label) or "utf-8"
    try:
        return Decoded(data.decode(codec), codec)
    except UnicodeDecodeError:
        pass
    declared = _declared(data)
    for fallback in (declared, *FALLBACKS) if declared else FALLBACKS:
        try:
            return Decoded(data.decode(fallback), fallback, label)
        except UnicodeDecodeError:
            continue
    return Decoded(data.decode("latin-1"), "latin-1", label)


def utf8_document(text: str) -> bytes:
    """``text`` as UTF-8 bytes that say so, for parsers that read the declaration.

    The declaration's ``encoding`` is dropped (UTF-8 is the default), a stray
    byte-order mark goes, and control characters that XML 1.0 forbids (often
    left by a CMS) are removed so that one bad byte does not lose a whole feed.
    """
    text = _NOT_XML.sub("", text.lstrip("\ufeff"))
    declaration = _DECLARATION.match(text)
    if declaration is not None:
        text = '<?xml version="1.0" encoding="utf-8"?>' + text[declaration.end() :]
    return text.encode("utf-8", errors="replace")


def _label(body: bytes, http_charset: str | None) -> str:
    if http_charset and _codec(http_charset):
        wide = _sniffed(body)
        if wide and _codec(http_charset) in ("utf-16", "utf-32"):
            return wide  # "charset=utf-16" without a mark: the bytes show the order
        return http_charset
    wide = _sniffed(body)
    if wide:
        return wide
    return _declared(body) or "utf-8"


def _declared(body: bytes) -> str | None:
    """The codec that the XML declaration names, if Python knows it."""
    declared = _DECLARED.match(body.lstrip()[:300])
    return _codec(declared.group(1).decode("ascii")) if declared else None


def _sniffed(body: bytes) -> str | None:
    return next((codec for start, codec in _SNIFF if body.startswith(start)), None)


def _codec(label: str) -> str | None:
    """The Python codec for an encoding label (its superset where there is one), or None."""
    name = label.strip().strip("\"'").lower()
    name = SUPERSETS.get(name, name)
    try:
        found = codecs.lookup(name).name
    except LookupError:
        return None
    return SUPERSETS.get(found, found)

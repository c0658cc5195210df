"""Simplified → Traditional Chinese, with OpenCC, for the portal's Traditional versions.

The 2006 rules ask government sites for Traditional Chinese versions where
possible. Every page and feed of the portal has one, converted from the
Simplified text with OpenCC's ``s2t`` profile (OpenCC's standard Traditional
characters, not a regional variant: the result is declared ``zh-Hant``, the
BCP 47 script subtag, rather than ``zh-TW`` or ``zh-HK``, which would promise
Taiwan or Hong Kong vocabulary that ``s2t`` does not give).

Building a converter reads OpenCC's dictionaries (milliseconds), so each thread
builds one once. Short strings (titles, names, categories, which repeat on
every page) are remembered; long texts are converted each time, and the
callers cache what they build from them (feed entry fragments, pages).
"""

from __future__ import annotations

import functools
import threading

import opencc

PROFILE = "s2t.json"
LANGUAGE_TAG = "zh-Hant"
"""How a converted text is declared (``xml:lang``, ``lang``, RSS ``<language>``)."""

SHORT = 256  # characters: strings up to this long are remembered
REMEMBERED = 20_000  # how many short strings

_local = threading.local()


def to_traditional(text: str) -> str:
    """``text`` with its Simplified characters turned into Traditional ones.

    Text that is already Traditional, or not Chinese, comes back unchanged
    (or nearly: OpenCC maps a few characters either way, so do not convert
    text that is not Simplified to begin with).
    """
    if not text or text.isascii():
        return text
    if len(text) <= SHORT:
        return _remembered(text)
    return _converter().convert(text)


@functools.lru_cache(maxsize=REMEMBERED)
def _remembered(text: str) -> str:
    return _converter().convert(text)


def _converter() -> opencc.OpenCC:
    converter = getattr(_local, "converter", None)
    if converter is None:
        converter = opencc.OpenCC(PROFILE)
        _local.converter = converter
    return converter

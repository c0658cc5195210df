"""What a valid node looks like: the vocabularies and the single-value rules.

Each ``*_problem`` function returns ``None`` for a good value, else a
``(message, expected)`` pair for a ``Problem``.
"""

from __future__ import annotations

import re

# The record standard's vocabularies, re-exported for the map's checks.
from hub.records.model import DEFAULT_LANGUAGE
from hub.records.model import KINDS as KINDS
from hub.records.model import LANGUAGES as LANGUAGES

LEVELS = ("central", "department", "provincial", "municipal", "county")

# level -> the levels its parent may have. County governments sit under a city,
# or directly under a province (districts of 直辖市, 省直管县); a department sits
# under the government it belongs to, never under another department.
PARENT_LEVELS: dict[str, tuple[str, ...]] = {
    "central": (),
    "provincial": ("central",),
    "municipal": ("provincial",),
    "county": ("municipal", "provincial"),
    "department": ("central", "provincial", "municipal", "county"),
}

DEFAULT_LANGUAGES = (DEFAULT_LANGUAGE,)

NODE_KEYS = (
    "id",
    "name",
    "level",
    "parent",
    "site_code",
    "domain",
    "icp",
    "police_filing",
    "languages",
    "sources",
    "credentials",
    "subscribe",
)
SUBSCRIBE_KEYS = ("from", "kinds", "topics")

SECRET_WORDS = ("password", "secret", "token", "api_key")

ID_EXPECTED = "a lowercase slug: a letter, then up to 31 letters, digits or '-' (no dots)"
DOMAIN_EXPECTED = "a lowercase host name ending in .gov.cn or .政务 (.cn for Chinese names)"
ENV_EXPECTED = 'an env reference { env = "VAR_NAME" } with an upper-case variable name'

ICP_EXPECTED = (
    "the ICP filing number as the footer shows it: a province's one-character abbreviation,"
    " ICP备, the number and 号, optionally -n (粤ICP备05070829号, 京ICP备05070218号-1)"
)
POLICE_EXPECTED = (
    "the 公安 filing number as the footer shows it: a province's one-character abbreviation,"
    " 公网安备, 14 digits and 号 (粤公网安备 44010402000101号)"
)

_ICP = re.compile(r"[\u4e00-\u9fff]ICP备\d{6,10}号(?:-\d{1,3})?")
_POLICE = re.compile(r"[\u4e00-\u9fff]公网安备 ?\d{14}号")
_ID = re.compile(r"[a-z][a-z0-9-]{0,31}")
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_LABEL = re.compile(r"(?!-)[a-z0-9\u4e00-\u9fff-]{1,63}(?<!-)")
_CHINESE = re.compile(r"[\u4e00-\u9fff]")

Issue = tuple[str, str] | None


def id_problem(value: str) -> Issue:
    if _ID.fullmatch(value):
        return None
    return f"{value!r} is not a valid id", ID_EXPECTED


def env_name_problem(value: str) -> Issue:
    if _ENV_NAME.fullmatch(value):
        return None
    return f"{value!r} is not an environment variable name", ENV_EXPECTED


def domain_problem(value: str) -> Issue:
    """The 2006 and 2017 rules: .gov.cn, or .政务; Chinese names may use .cn."""
    if "/" in value or ":" in value:
        return f"{value!r} is not a bare host name", "the host only, e.g. www.gd.gov.cn"
    if value != value.lower():
        return f"{value!r} has upper-case letters", DOMAIN_EXPECTED
    labels = value.split(".")
    if len(value) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        return f"{value!r} is not a valid host name", DOMAIN_EXPECTED
    suffixes = ["gov.cn", "政务"] + (["cn"] if _CHINESE.search(value) else [])
    if not any(value.endswith("." + suffix) for suffix in suffixes):
        return f"{value!r} is not a government domain", DOMAIN_EXPECTED
    return None


def icp_problem(value: str) -> Issue:
    """The ICP filing number (ICP备案号) of the 2005 MIIT rules, as sites print it."""
    if _ICP.fullmatch(value):
        return None
    return f"{value!r} is not an ICP filing number", ICP_EXPECTED


def police_problem(value: str) -> Issue:
    """The public-security filing number (公安机关备案号, 公网安备) as sites print it."""
    if _POLICE.fullmatch(value):
        return None
    return f"{value!r} is not a 公安 filing number", POLICE_EXPECTED


def level_problem(value: str) -> Issue:
    if value in LEVELS:
        return None
    return f"{value!r} is not a level", "one of " + ", ".join(LEVELS)


def is_secret_key(key: str) -> bool:
    """Whether a key's name says it holds a secret (``broker_password``, ``apiToken``)."""
    name = key.lower().replace("-", "_")
    return any(word in name for word in SECRET_WORDS)


def env_hint(node_id: str, key: str) -> str:
    """A suggested variable name for a node's secret."""
    return re.sub(r"[^A-Z0-9]+", "_", f"GOVHUB_NODE_{node_id}_{key}".upper())

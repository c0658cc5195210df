"""Following a government list page: the detail pages it links to, and the next list page.

A column's list page (``/zfwj/``) links to its detail pages among headers,
footers, navigation and links to other sites. With no selector configured,
``detail_links`` keeps the article-shaped URLs (``ARTICLE_PATH``: the URL shapes of
TRS, www.gov.cn, Hanweb and Guangdong) on the list page's own host, outside the
page's chrome, from the list that holds most of them; ``next_page`` follows the
link that says 下一页. Links come back absolute, without fragments and without
repeats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree

from adapters.page.html import Found, Selector, without_spaces

# Article URLs: TRS (t20200802_1352104.html), www.gov.cn (content_5365945.htm),
# Hanweb (art/2021/3/5/art_1229_123.html), Guangdong (post_7801234.html).
ARTICLE_PATH = re.compile(
    r"(/t\d{8}_\d+|/content_\d+|/art/\d{4}/\d{1,2}/\d{1,2}/art_\d+_\d+|/post_\d+)\.s?html?$"
)

_CHROME_TAGS = frozenset(("header", "footer", "nav"))
_CHROME_WORDS = ("foot", "header", "nav", "copyright", "crumb")
_LIST_TAGS = frozenset(("ul", "ol", "dl", "table"))
_NEXT_TEXTS = frozenset(("下一页", "下页", "nextpage", "next"))


def detail_links(
    root: etree._Element, page_url: str, selector: Selector | None = None
) -> list[str]:
    """The detail pages a list page links to, in page order, without repeats.

    With a selector: every matched link (an ``a`` element's ``href``, the links
    inside another matched element, or an XPath string). Without: links to
    article-shaped URLs (``ARTICLE_PATH``) on the list page's own host, outside
    headers, footers and navigation, taken from the list that holds most of them.
    """
    if selector is not None:
        hrefs = [h for found in selector.select(root) for h in _hrefs(found)]
        return _absolute(hrefs, page_url, lambda url: True)
    host = (urlsplit(page_url).hostname or "").lower()

    def article(url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname or "").lower() == host and bool(ARTICLE_PATH.search(parts.path))

    groups: dict[etree._Element, list[str]] = {}
    for anchor in root.iter("a"):
        href = anchor.get("href")
        if not href or in_chrome(anchor):
            continue
        url = _resolve(href, page_url)
        if url is not None and article(url):
            groups.setdefault(_list_of(anchor), []).append(url)
    if not groups:
        return []
    biggest = max(groups.values(), key=len)  # max keeps the first of equal groups
    return list(dict.fromkeys(biggest))


def next_page(root: etree._Element, page_url: str, selector: Selector | None = None) -> str | None:
    """The next list page: the selector's first link, else the link that says 下一页."""
    if selector is not None:
        hrefs = [h for found in selector.select(root) for h in _hrefs(found)]
    else:
        hrefs = [
            anchor.get("href") or ""
            for anchor in root.iter("a")
            if without_spaces(anchor.text_content()).strip("<>»›").lower() in _NEXT_TEXTS
        ]
    links = _absolute(hrefs, page_url, lambda url: True)
    return next((url for url in links if url != page_url), None)


def in_chrome(element: etree._Element) -> bool:
    """Whether ``element`` is inside a header, footer, navigation or breadcrumb."""
    for ancestor in element.iterancestors():
        if ancestor.tag in _CHROME_TAGS:
            return True
        names = f"{ancestor.get('class') or ''} {ancestor.get('id') or ''}".lower()
        if any(word in names for word in _CHROME_WORDS):
            return True
    return False


def _list_of(anchor: etree._Element) -> etree._Element:
    """The list an article link belongs to: its ``ul``, ``ol``, ``dl`` or ``table``, else
    the element that repeats the link's item (``div.newslist`` of ``div.item``s)."""
    for ancestor in anchor.iterancestors():
        if ancestor.tag in _LIST_TAGS:
            return ancestor
    child = anchor
    for ancestor in anchor.iterancestors():
        alike = [c for c in ancestor if c.tag == child.tag and c.get("class") == child.get("class")]
        if len(alike) > 1:
            return ancestor
        child = ancestor
    parent = anchor.getparent()
    return parent if parent is not None else anchor


def _hrefs(found: Found) -> list[str]:
    if isinstance(found, str):
        return [found]
    if found.tag == "a":
        return [found.get("href") or ""]
    return [anchor.get("href") or "" for anchor in found.iter("a")]


def _absolute(hrefs: Iterable[str], page_url: str, keep: Callable[[str], bool]) -> list[str]:
    urls = (_resolve(href, page_url) for href in hrefs)
    return list(dict.fromkeys(url for url in urls if url is not None and keep(url)))


def _resolve(href: str, page_url: str) -> str | None:
    """``href`` as an absolute http(s) URL without its fragment, or None."""
    href = href.strip()
    if not href or href.startswith("#"):
        return None
    try:
        url = urldefrag(urljoin(page_url, href)).url
    except ValueError:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None

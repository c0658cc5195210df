"""The ``page`` adapter: government web pages (a list page and its detail pages) as records.

``adapter`` holds the adapter class and its settings (fetch, convert); ``html``
reads a document, ``links`` finds a list page's detail links, ``fields``
recognises the metadata labels and ``record`` builds the record from them.
"""

from adapters.page.adapter import Page, PageAdapter, PageSettings

__all__ = ["Page", "PageAdapter", "PageSettings"]

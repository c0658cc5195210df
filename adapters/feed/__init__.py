"""The ``feed`` adapter: RSS and Atom feeds of a site's news, one record per entry.

``adapter`` holds the adapter class and its settings; ``encoding`` decodes a
feed's bytes as its declarations say, ``fast`` reads plain RSS and Atom without
feedparser, and ``entry`` is the entry both readers yield.
"""

from adapters.feed.adapter import FeedAdapter, FeedItem, FeedSettings, parse_feed

__all__ = ["FeedAdapter", "FeedItem", "FeedSettings", "parse_feed"]

"""Distinct valid records made from the examples, for tests that need many of them."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "records"
NEWS = (EXAMPLES / "news.xml").read_bytes()  # a record of node mee, site bm17000001


def news(index: int, revision: int = 1, node: str = "mee", site: str = "bm17000001") -> bytes:
    """A distinct valid news record of ``node``: its own id, revision and title."""
    return (
        NEWS.replace(b"urn:govhub:mee:t20220417_974894", f"urn:govhub:{node}:n-{index}".encode())
        .replace(b"<revision>1</revision>", f"<revision>{revision}</revision>".encode())
        .replace(b'node="mee" site="bm17000001"', f'node="{node}" site="{site}"'.encode())
        .replace("一周要闻（".encode(), f"一周要闻 {index} 第{revision}版（".encode())
    )

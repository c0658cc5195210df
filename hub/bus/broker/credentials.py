"""The broker URL a node connects with: the federation's URL, as the node's own user.

Operators configure one ``GOVHUB_BROKER_URL`` (host, port, vhost, TLS); each node
connects as its broker user (``user_prefix`` + node id, as ``govhub broker setup``
created it) with the password from the environment variable its
``broker_password`` credential names in nodes.toml.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit, urlunsplit

from hub.bus.topology import broker_user
from hub.federation import Node

CREDENTIAL = "broker_password"  # the nodes.toml credential that holds the password


def node_broker_url(
    broker_url: str, node: Node, environ: Mapping[str, str], *, user_prefix: str = ""
) -> str:
    """``broker_url`` with the node's user and password in place of its own."""
    password = (
        node.resolve_credentials(environ)[CREDENTIAL] if CREDENTIAL in node.credentials else ""
    )
    parts = urlsplit(broker_url)
    host = parts.hostname or "localhost"
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = (
        f"{quote(broker_user(node.id, user_prefix), safe='')}:{quote(password, safe='')}@{host}"
    )
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))

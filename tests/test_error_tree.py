"""One error tree and one error middleware: every exception class defined in ``hub`` derives
from ``hub.errors.HubError``, every error that reaches HTTP is a ``RequestError`` with a
status, and the portal and the node's port answer errors through the one middleware."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sqlite3
from pathlib import Path

import pytest
from test_adapter_push import ENVIRON, NODE
from test_pages import FEDERATION

import hub
from adapters.push import push_sources
from hub.errors import HubError, RequestError
from hub.http import errors
from hub.node.port import View
from hub.node.port import make_app as make_port
from hub.web.app import make_app as make_portal
from hub.web.context import Portal


def hub_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(hub.__path__, "hub.")
        if not info.name.endswith("__main__")
    ]


def test_every_exception_class_of_hub_derives_from_hub_error() -> None:
    outside = []
    for name in hub_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            mine = cls.__module__ == name and issubclass(cls, BaseException)
            if mine and not issubclass(cls, HubError):
                outside.append(f"{name}.{cls.__qualname__}")
    assert outside == [], f"derive these from hub.errors.HubError (or a base under it): {outside}"


@pytest.mark.parametrize("status", [399, 200, 600])
def test_a_request_error_needs_an_error_status(status: int) -> None:
    with pytest.raises(ValueError, match="error status"):
        RequestError(status, "message")


def test_the_portal_and_the_port_answer_errors_through_the_one_middleware(
    tmp_path: Path,
) -> None:
    portal = make_portal(Portal(FEDERATION, None, "", "cn"))  # type: ignore[arg-type]
    state = sqlite3.connect(":memory:")
    port = make_port(View(NODE, state, push=push_sources(NODE, tmp_path, ENVIRON)))
    for app in (portal, port):
        assert list(app.middlewares) == [errors.middleware]
    assert errors.ERROR_PAGE in portal and errors.ERROR_PAGE not in port

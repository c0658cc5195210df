"""The govhub error tree.

Every error a user can meet says what was wrong, where (file, line, field) and
how to fix it. Errors are built from templates with named fields so the three
parts are never forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input, located precisely enough to fix.

    ``where`` is the file name (or another source label), ``line`` the 1-based
    line in it (``None`` when unknown), ``field`` the path of the element,
    attribute or key (``indexNumber``, ``origin/@site``, ``node[cn.gd].parent``).
    """

    where: str
    line: int | None
    field: str
    message: str
    expected: str = ""

    def __str__(self) -> str:
        location = f"{self.where}:{self.line}" if self.line else self.where
        text = f"{location}: {self.field}: {self.message}"
        if self.expected:
            text += f" (expected {self.expected})"
        return text


class HubError(Exception):
    """Base of every error govhub raises on purpose."""


class InputError(HubError):
    """An input (record, config file) has one or more problems."""

    def __init__(self, problems: list[Problem]) -> None:
        if not problems:
            raise ValueError("InputError needs at least one problem")
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class RecordInvalid(InputError):
    """A disclosure record is unsafe, malformed, schema-invalid or breaks a rule."""


class ConfigInvalid(InputError):
    """The federation map (nodes.toml) or a setting is wrong."""


class Unavailable(HubError):
    """A service govhub needs (the database, the broker) is down or restarting: retry
    later. Over HTTP, a 503 with ``Retry-After``."""


class RequestError(HubError):
    """A request that cannot be answered as asked: the HTTP ``status``, what is wrong
    (``message``), and the ``parameter`` to fix (``None`` when no single one is at fault).

    ``headers`` go on the response (``WWW-Authenticate`` for a 401); ``details`` are
    extra members of the JSON error body (a refused push's ``problems``). Every HTTP
    server of govhub answers it through ``hub.http.errors.middleware``.
    """

    def __init__(
        self,
        status: int,
        message: str,
        parameter: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        details: Mapping[str, object] | None = None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"RequestError needs an error status (400-599), not {status}")
        super().__init__(message)
        self.status, self.message, self.parameter = status, message, parameter
        self.headers = dict(headers or {})
        self.details = dict(details or {})

"""Settings: one declarative table drives environment loading, checks,
``govhub config`` and docs/settings.md (a test keeps the docs complete).

Settings are read once into a frozen ``Settings`` object that is passed
explicitly; there is no module-level configuration.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.errors import ConfigInvalid, Problem


@dataclass(frozen=True, slots=True)
class Setting:
    name: str  # environment variable
    default: str
    help: str
    parse: Callable[[str], Any] = str
    secret: bool = False

    @property
    def key(self) -> str:
        return self.name.removeprefix("GOVHUB_").lower()


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(f"{value} is not positive")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value <= 3600:
        raise ValueError(f"{value:g} is not a number of seconds from 0 (excluded) to 3600")
    return value


def _workers(text: str) -> int | None:
    """Empty: one per CPU core (``None``); 0: none; otherwise that many."""
    if not text.strip():
        return None
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} is negative")
    return value


def _data_dir(text: str) -> Path:
    if text:
        return Path(text).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "govhub"


SETTINGS: tuple[Setting, ...] = (
    Setting("GOVHUB_CONFIG", "nodes.toml", "Path of the federation map (nodes.toml).", Path),
    Setting(
        "GOVHUB_MAX_RECORD_BYTES",
        str(4 * 1024 * 1024),
        "Largest record document accepted, in bytes; larger ones are refused before parsing.",
        _positive_int,
    ),
    Setting(
        "GOVHUB_MAX_DEPTH",
        "64",
        "Deepest element nesting accepted inside a record body or extension.",
        _positive_int,
    ),
    Setting(
        "GOVHUB_DATABASE_URL",
        "",
        "PostgreSQL URL of the hub's store (postgresql://user:pass@host/db); "
        "empty: an embedded PostgreSQL in GOVHUB_DATA_DIR.",
        secret=True,
    ),
    Setting(
        "GOVHUB_BROKER_URL",
        "",
        "RabbitMQ URL (amqp://user:pass@host/vhost); empty: an in-process bus.",
        secret=True,
    ),
    Setting(
        "GOVHUB_DATA_DIR",
        "",
        "Where govhub keeps local state (embedded database, node outboxes); "
        "empty: $XDG_DATA_HOME/govhub or ~/.local/share/govhub.",
        _data_dir,
    ),
    Setting(
        "GOVHUB_HARVEST_WORKERS",
        "",
        "Worker processes that convert, check and review harvested items (docs/sources.md); "
        "empty: one per CPU core; 0: none, all in the node's own process.",
        _workers,
    ),
    Setting(
        "GOVHUB_HTTP_HEAD_TIMEOUT",
        "20",
        "Seconds an HTTP client has to send a request's line and headers, from connecting "
        "or from the previous response; slower connections are closed.",
        _seconds,
    ),
    Setting(
        "GOVHUB_HTTP_BODY_TIMEOUT",
        "60",
        "Seconds an HTTP client has to send a request body (a push); slower ones get 408.",
        _seconds,
    ),
    Setting(
        "GOVHUB_HTTP_MAX_CONNECTIONS",
        "512",
        "Open HTTP connections each server (portal, node port) takes at most; "
        "one more is answered 503 and closed.",
        _positive_int,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    config: Path
    max_record_bytes: int
    max_depth: int
    database_url: str
    broker_url: str
    data_dir: Path
    harvest_workers: int | None = None
    http_head_timeout: float = 20.0
    http_body_timeout: float = 60.0
    http_max_connections: int = 512

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default: the process environment), then ``overrides``
        (command-line flags; ``None`` values are ignored)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        problems = []
        for setting in SETTINGS:
            text = environ.get(setting.name, setting.default)
            try:
                values[setting.key] = setting.parse(text)
            except ValueError as exc:
                problems.append(
                    Problem(
                        "environment",
                        None,
                        setting.name,
                        f"{text!r} is not usable: {exc}",
                        f"{setting.help.rstrip('.')} (default {setting.default})",
                    )
                )
        if problems:
            raise ConfigInvalid(problems)
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def describe(self) -> list[tuple[str, str, str]]:
        """(variable, value, help) for every setting, secrets masked."""
        rows = []
        for setting in SETTINGS:
            value = str(getattr(self, setting.key))
            shown = "********" if setting.secret and value else value or "(empty)"
            rows.append((setting.name, shown, setting.help))
        return rows

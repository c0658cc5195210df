"""When to check a source again: the polling rules of a good citizen.

A source is checked every ``interval`` seconds. The server can ask for less:
an answer fresh by ``Cache-Control: max-age`` or ``Expires`` is not asked for
again before it goes stale, and ``Retry-After`` (on 429 or 503) is waited out.
A failing source is tried less and less often (``interval × 2^errors``, at most
a day, ±10 % jitter so that sources that failed together do not come back
together) and, after ``max_errors`` failures in a row, parked: it is no longer
tried until ``govhub sources reset``.

These keys of a ``[[node.sources]]`` table are govhub's, not the adapter's;
they are taken out before the adapter's settings are checked.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

from hub.errors import Problem
from hub.federation import Node, Source

DEFAULT_INTERVAL = 900.0
DEFAULT_MAX_ERRORS = 10
MIN_INTERVAL = 10.0
MAX_DELAY = 86_400.0
"""The longest wait: a failing source is tried at least daily until parked, and a
far-future ``Expires`` does not silence a source for longer than a day."""
JITTER = 0.1

log = logging.getLogger(__name__)

SCHEDULING_KEYS = ("interval", "max_errors", "enabled")


@dataclass(frozen=True, slots=True)
class Plan:
    """A source's scheduling keys from ``nodes.toml``."""

    interval: float = DEFAULT_INTERVAL  # seconds between checks
    max_errors: int = DEFAULT_MAX_ERRORS  # consecutive failures before the source is parked
    enabled: bool = True  # false: never harvested (the configuration stays checked)


def split_plan(source: Source, node: Node, where: str) -> tuple[Plan, Source, list[Problem]]:
    """The source's plan, the source without the scheduling keys, and what is wrong with them."""
    settings = dict(source.settings)
    problems: list[Problem] = []

    def problem(key: str, value: Any, expected: str) -> None:
        label = f"node[{node.id}].sources[{source.name}].{key}"
        line = source.line or node.line
        problems.append(Problem(where, line, label, f"{value!r} is not usable", expected))

    interval = settings.pop("interval", DEFAULT_INTERVAL)
    if not _number(interval) or interval < MIN_INTERVAL:
        problem("interval", interval, f"seconds between checks, at least {MIN_INTERVAL:g}")
        interval = DEFAULT_INTERVAL
    max_errors = settings.pop("max_errors", DEFAULT_MAX_ERRORS)
    if not isinstance(max_errors, int) or isinstance(max_errors, bool) or max_errors < 1:
        problem("max_errors", max_errors, "a whole number of failures, 1 or more")
        max_errors = DEFAULT_MAX_ERRORS
    enabled = settings.pop("enabled", True)
    if not isinstance(enabled, bool):
        problem("enabled", enabled, "true or false")
        enabled = True
    plan = Plan(float(interval), max_errors, enabled)
    return plan, replace(source, settings=MappingProxyType(settings)), problems


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a failed harvest means for the source."""

    errors: int
    next_check_at: datetime | None  # None when parked
    parked: bool


def after_success(
    plan: Plan,
    at: datetime,
    fresh_until: datetime | None = None,
    retry_after: float | None = None,
) -> datetime:
    """The next check after a complete harvest: an interval on, or when the answer goes stale."""
    due = at + timedelta(seconds=plan.interval)
    latest = at + timedelta(seconds=max(plan.interval, MAX_DELAY))
    if fresh_until is not None:
        due = max(due, min(fresh_until, latest))
    if retry_after is not None:  # a later request of the harvest was asked to wait
        due = max(due, at + timedelta(seconds=min(retry_after, MAX_DELAY)))
    return due


def after_failure(
    plan: Plan,
    errors_before: int,
    at: datetime,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Verdict:
    """The next check after a failed harvest: backoff, the server's ``Retry-After``, or parked."""
    errors = errors_before + 1
    if errors >= plan.max_errors:
        return Verdict(errors, None, True)
    if retry_after is not None:
        delay = min(max(retry_after, 1.0), MAX_DELAY)
    else:
        spread = (rng or random).uniform(1 - JITTER, 1 + JITTER)
        delay = min(plan.interval * 2**errors, MAX_DELAY) * spread
    return Verdict(errors, at + timedelta(seconds=delay), False)


def log_verdict(
    verdict: Verdict, node: str, source: str, error: str, *, trace: BaseException | None
) -> None:
    """Say what a failed harvest means: parked (an error naming the command that brings
    the source back) or the next try (a warning). ``trace``: the exception of a bug in
    govhub itself, whose traceback is logged."""
    extra = {"node": node, "source": source, "stage": "harvest"}
    if verdict.parked:
        log.error(
            "source %s parked after %d failures in a row (last: %s); fix it, then run "
            "`govhub sources reset --node %s %s`",
            *(source, verdict.errors, error, node, source),
            extra=extra,
        )
        return
    when = verdict.next_check_at.isoformat(timespec="seconds") if verdict.next_check_at else ""
    log.warning(
        "source %s failed (%d in a row, next try %s): %s",
        *(source, verdict.errors, when, error),
        exc_info=trace,
        extra=extra,
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)

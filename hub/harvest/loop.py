"""On schedule: every enabled source of a running node harvested when it is due, a few at a time.

``run_on_schedule`` is the loop behind ``Harvester.run``: it reads the sources'
states (``hub.harvest.state``), starts the harvest of each due source
while a slot is free, and sleeps until the next is due, a harvest ends or the
node stops. When a source is due is ``hub.harvest.schedule``'s to say; one
harvest is ``Harvester.harvest``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from hub.harvest.convert import describe_error
from hub.harvest.plan import Planned
from hub.harvest.state import SourceState, all_states, source_state
from hub.harvest.tally import Tally
from hub.lifecycle import first_of
from hub.nodedb import now

if TYPE_CHECKING:
    from hub.harvest.harvester import Harvester

log = logging.getLogger(__name__)

CONCURRENCY = 4
"""Sources harvested at once by a running node (``HttpClient`` also limits requests per host)."""
IDLE = 10.0
"""The schedule is read again at least this often (a ``govhub sources reset`` is seen then)."""


async def run_on_schedule(
    harvester: Harvester,
    planned: Sequence[Planned],
    stop: asyncio.Event,
    concurrency: int,
    idle: float,
) -> None:
    """Harvest every enabled source of ``planned`` when it is due, ``concurrency`` at a
    time, until ``stop``."""
    enabled = [p for p in planned if p.plan.enabled]
    running: dict[str, asyncio.Task[Tally]] = {}
    resting: dict[str, datetime] = {}  # sources whose harvest broke in govhub itself
    changed = asyncio.Event()
    done: list[str] = []  # harvests finished since the states were read
    states: dict[str, SourceState] = {}
    read_at = -idle  # when every state was last read

    def finished(name: str, _: object) -> None:
        running.pop(name, None)
        done.append(name)
        changed.set()

    async with asyncio.TaskGroup() as group:
        while not stop.is_set():
            changed.clear()
            # Every state at least every ``idle`` seconds (a reset is seen then); in
            # between only those of the harvests just finished: reading a thousand
            # sources' states each time one finishes would cost more than harvesting.
            if time.monotonic() - read_at >= idle:
                done.clear()
                states, read_at = await harvester.read_state(all_states), time.monotonic()
            while done:
                name = done.pop()
                states[name] = await harvester.read_state(source_state, name)
            at = now()
            for each in enabled:
                name = each.name
                if len(running) >= concurrency:
                    break
                if name in running or resting.get(name, at) > at:
                    continue
                if not states.get(name, SourceState(name)).due(at):
                    continue
                task = group.create_task(
                    _guarded(harvester, each, stop, resting), name=f"harvest {name}"
                )
                running[name] = task
                task.add_done_callback(functools.partial(finished, name))
            # With every slot taken only a finished harvest (``changed``) frees one:
            # no need to look for the next due source before that.
            full = len(running) >= concurrency
            wait = idle if full else _until_due(enabled, states, running, resting, at, idle)
            await first_of(stop, changed, timeout=wait)


async def _guarded(
    harvester: Harvester, planned: Planned, stop: asyncio.Event, resting: dict[str, datetime]
) -> Tally:
    """One scheduled harvest; a failure of govhub's own (the state file, a bug) is
    logged and the source rests for an interval instead of stopping the node."""
    try:
        return await harvester.harvest(planned, stop)
    except Exception as exc:
        log.exception(
            "harvest of source %s broke",
            planned.name,
            extra={"node": harvester.node.id, "source": planned.name, "stage": "harvest"},
        )
        resting[planned.name] = now() + timedelta(seconds=planned.plan.interval)
        return Tally(error=describe_error(exc))


def _until_due(
    enabled: Sequence[Planned],
    states: dict[str, SourceState],
    running: dict[str, asyncio.Task[Tally]],
    resting: dict[str, datetime],
    at: datetime,
    idle: float,
) -> float:
    """Seconds until the next source not running now is due (at most ``idle``)."""
    soonest = at + timedelta(seconds=idle)
    for each in enabled:
        name = each.source.name
        if name in running:
            continue
        state = states.get(name)
        if state is not None and state.parked:
            continue
        due = state.next_check_at if state is not None and state.next_check_at else at
        rest = resting.get(name)
        if rest is not None and rest > due:
            due = rest
        if due <= at:
            return 0.05  # due now (a slot is free: the loop takes it at once)
        soonest = min(soonest, due)
    return max((soonest - at).total_seconds(), 0.05)

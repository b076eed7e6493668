"""Live events: the one way a write reaches browsers, as small dicts sent after its commit.

A service changes state inside a transaction and emits an event (``desk_changed``,
``campaign_calls_changed``...). When (and only if) the transaction commits, the event goes to a
Channels group. It carries no HTML: the consumer that delivers it (``agentdesk.consumers``)
renders the panels it names from the committed state *at delivery*, so a late event shows the
current desk, and frames on one socket can never overtake each other. Channel layers drop
messages under pressure, so every (re)connect starts with the whole desk; a lost event costs a
moment, never correctness. Groups and event types are catalogued in docs/events.md.

This module is the engine's only way to the desk: ``calls`` and ``campaigns`` import it (and the
desk's models and roles), never the desk's views, selectors or services.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from typing import Any

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("agentdesk.live")

# -- groups ---------------------------------------------------------------------------------------

SUPERVISORS = "supervisors"
# Wallboards (``/ws/supervisor/?view=wallboard``): every campaign's calls, not one campaign's.
WALLBOARD = "wallboard"


def agent_group(agent_id: int) -> str:
    """Every open desk of one agent."""
    return f"agent.{agent_id}"


def tab_group(agent_id: int, tab: str) -> str:
    """One desk tab (its socket): where the answers to that tab's own commands go."""
    return f"desk-tab.{agent_id}.{tab}"


def campaign_group(campaign_id: int) -> str:
    return f"campaign.{campaign_id}"


# -- event types (the consumer's method is the type with "." replaced by "_") --------------------

DESK_CHANGED = "desk.changed"  # agent.<id> / desk-tab.<id>.<tab>: {"panels": [...], "alert": ...}
BOARD_AGENT = "board.agent"  # supervisors: {"agent": id}, one row of the agents board
CAMPAIGN_CALLS = "campaign.calls"  # campaign.<id> and wallboard: {"campaign": id}, its calls
CAMPAIGN_COUNTS = "campaign.counts"  # supervisors: {"campaign": id}, a campaign's lead counts
CAMPAIGN_SYNC = "campaign.sync"  # supervisors: {"campaign": id}, pushing leads to the platform
UPLOAD_PROGRESS = "upload.progress"  # supervisors: {"upload": id}, a sheet's dry run / import

# The desk's panels (partials of desk/desk.html), named by desk.changed events.
MAIN = "main"  # the whole desk: campaign picker, presence, alert, preview, call, disposition
PRESENCE = "presence"
ALERT = "alert"
PREVIEW = "preview"
CALL = "call"
DISPOSE = "dispose"
DAY = "day"  # the agent's day: calls, connects, talk time, conversions, time in each state
CALLBACKS = "callbacks"  # the callbacks the agent booked
RECENT = "recent"  # the agent's last calls, notes correctable for a few minutes
PANELS = (MAIN, PRESENCE, ALERT, PREVIEW, CALL, DISPOSE, DAY, CALLBACKS, RECENT)


class _PushLoop:
    """One event loop per process, on a daemon thread, for sends from synchronous code.

    ``async_to_sync`` would build a new loop for every send, and channels-redis keeps one
    connection pool per loop, so each send paid for a fresh Redis connection (bench/live_bench.py
    measured ~5.6 ms a send). Reusing one loop reuses its pool. Re-created after a fork (Celery's
    prefork children do not inherit threads).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def get(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="live-push", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


_push_loop = _PushLoop()


def send(group: str, event: dict[str, Any]) -> None:
    """Send an event to a group now, without waiting for Redis: the caller (a request, a task, a
    lease) goes on at once. Failures are logged, never raised: an event is a courtesy on top of
    state that is already committed, and its receiver renders whatever is committed when it
    arrives, so two events overtaking each other still end on the newest state.

    Inside :func:`one_batch` (a desk command), the event joins the command's batch instead."""
    batch = getattr(_command, "batch", None)
    if batch is not None:
        batch.add(group, event)
    else:
        _publish(group, event)


def _publish(group: str, event: dict[str, Any]) -> None:
    try:
        future = asyncio.run_coroutine_threadsafe(
            get_channel_layer().group_send(group, event), _push_loop.get()
        )
    except Exception:
        log.warning("live event %s to %s failed", event.get("type"), group, exc_info=True)
        return
    future.add_done_callback(lambda done: _log_failure(done, group, event))


def _log_failure(done, group: str, event: dict[str, Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        log.warning("live event %s to %s failed", event.get("type"), group, exc_info=done.exception())


class _Batch:
    """The events of one transaction, sent when it commits, merged on the way: the same event to
    the same group goes once, and a group's ``desk.changed`` events become one naming all their
    panels (at most one alert; a tab's own extras are never merged). A Save that disposes the
    call and leases the next lead is one render per desk, not two: each render reads the
    committed state, so one frame shows what two would have."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def add(self, group: str, event: dict[str, Any]) -> None:
        if (group, event) not in self.events and not self.fold(group, event):
            self.events.append((group, event))

    def fold(self, group: str, event: dict[str, Any]) -> bool:
        """Merge ``event`` into the batch's desk event for ``group``, if it has one it merges with."""
        for i, (other_group, other) in enumerate(self.events):
            if other_group == group and (merged := _merged_desk_event(other, event)) is not None:
                self.events[i] = (group, merged)
                return True
        return False

    def __call__(self) -> None:
        for group, event in self.events:
            send(group, event)


def _merged_desk_event(first: dict[str, Any], second: dict[str, Any]) -> dict[str, Any] | None:
    keys = {"type", "panels", "alert"}
    if not (first["type"] == second["type"] == DESK_CHANGED and set(first) == set(second) == keys):
        return None
    if first["alert"] and second["alert"] and first["alert"] != second["alert"]:
        return None
    named = (*first["panels"], *second["panels"])
    panels = [MAIN] if MAIN in named else [panel for panel in PANELS if panel in named]
    return desk_event(panels, alert=first["alert"] or second["alert"])


_command = threading.local()


@contextmanager
def one_batch():
    """A desk command's events, its transactions' and its tab's answer, leave as one batch when
    it ends: a Save that disposes, leases the next lead and answers its tab costs each open desk
    one render, not three. The command's own work (its commits, its answer) is done by then, so
    the batch is sent where its newest event would have been."""
    if getattr(_command, "batch", None) is not None:
        yield
        return
    batch = _command.batch = _Batch()
    try:
        yield
    finally:
        _command.batch = None
        batch()


def answer_tab(agent_id: int, tab: str, event: dict[str, Any]) -> None:
    """A command's answer to the tab that sent it. Within :func:`one_batch`, when the command also
    changed every desk of the agent and the answer carries nothing of the tab's own (no form
    errors, no poll counter), the two are one event to the agent's desks, the tab among them."""
    batch = getattr(_command, "batch", None)
    if batch is None or not batch.fold(agent_group(agent_id), event):
        send(tab_group(agent_id, tab), event)


def emit(group: str, event: dict[str, Any]) -> None:
    """Send ``event`` after the current transaction commits (at once outside a transaction), in
    the transaction's one batch of events (:class:`_Batch`).

    The batch leaves at the place of its *newest* event among the transaction's commit hooks: each
    add moves it behind every hook registered before that event (a task enqueued, another write's
    hook), so no event ever leaves earlier than it would have alone, and a render never reads the
    state before a hook that came first. The batch is the newest one still pending: Django drops
    hooks registered inside a savepoint that rolls back, so a batch still listed belongs to work
    still to commit (an event of rolled-back work that joined an outer batch costs a render, no
    more)."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        send(group, event)
        return
    hooks = connection.run_on_commit
    for i in range(len(hooks) - 1, -1, -1):
        if isinstance(hooks[i][1], _Batch):
            hooks[i][1].add(group, event)
            hooks.append(hooks.pop(i))
            return
    batch = _Batch()
    batch.add(group, event)
    transaction.on_commit(batch, robust=True)


def desk_event(panels: Iterable[str], *, alert: dict[str, str] | None = None, **extra: Any) -> dict:
    """A ``desk.changed`` event. ``extra`` carries what only the asking tab shows (a poll's
    counter, a form's errors); every value must be JSON-friendly (it crosses Redis)."""
    unknown = set(panels) - set(PANELS)
    if unknown:
        raise ValueError(f"unknown desk panels {sorted(unknown)}")
    return {"type": DESK_CHANGED, "panels": list(panels), "alert": alert, **extra}


def desk_changed(agent_id: int, *panels: str, alert: dict[str, str] | None = None) -> None:
    """After commit: every open desk of the agent re-renders ``panels`` from the committed state,
    and the supervisors' board re-renders the agent's row (whatever changes a desk changes it)."""
    emit(agent_group(agent_id), desk_event(panels, alert=alert))
    board_agent_changed(agent_id)


def board_agent_changed(agent_id: int) -> None:
    emit(SUPERVISORS, {"type": BOARD_AGENT, "agent": agent_id})


def campaign_calls_changed(campaign_id: int) -> None:
    event = {"type": CAMPAIGN_CALLS, "campaign": campaign_id}
    emit(campaign_group(campaign_id), event)
    emit(WALLBOARD, event)


def campaign_counts_changed(campaign_id: int) -> None:
    emit(SUPERVISORS, {"type": CAMPAIGN_COUNTS, "campaign": campaign_id})


def campaign_sync_changed(campaign_id: int) -> None:
    emit(SUPERVISORS, {"type": CAMPAIGN_SYNC, "campaign": campaign_id})


def upload_progressed(upload_id: int, *, now: bool = False) -> None:
    """A sheet's progress moved. ``now``: sent at once (a long import reports mid-transaction)."""
    event = {"type": UPLOAD_PROGRESS, "upload": upload_id}
    if now:
        send(SUPERVISORS, event)
    else:
        emit(SUPERVISORS, event)


def alert(message: str, code: str = "", level: str = "error") -> dict[str, str]:
    """An alert for the desk, in plain words with the platform's code."""
    return {"message": message, "code": code or "", "level": level}

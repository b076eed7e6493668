"""Live pushes: the one helper through which every write reaches browsers, after its commit.

A service changes state inside a transaction and calls :func:`push_on_commit`. When (and only if)
the transaction commits, the partial is rendered and sent to a Channels group; the consumer
forwards the HTML frame and htmx's ws extension swaps it in by element id (out-of-band).
Channel layers drop messages under pressure, so browsers re-read their state over HTTP after
every reconnect; a lost push costs a refresh, never correctness. Groups and event types are
catalogued in docs/events.md.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable

from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("agentdesk.live")

# Channels event types; the consumer method is the type with "." replaced by "_".
DESK_HTML = "desk.html"
SUPERVISOR_HTML = "supervisor.html"


def agent_group(agent_id: int) -> str:
    return f"agent.{agent_id}"


def campaign_group(campaign_id: int) -> str:
    return f"campaign.{campaign_id}"


SUPERVISORS = "supervisors"


class _PushLoop:
    """One event loop per process, on a daemon thread, for pushes from synchronous code.

    ``async_to_sync`` would build a new loop for every push, and channels-redis keeps one
    connection pool per loop, so each push paid for a fresh Redis connection (bench/live_bench.py
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
SEND_TIMEOUT = 5.0


def send(group: str, html: str, *, event_type: str = DESK_HTML) -> None:
    """Send a rendered fragment to a group now. Failures are logged, never raised: a push is a
    courtesy on top of state that is already committed."""
    message = {"type": event_type, "html": html}
    try:
        future = asyncio.run_coroutine_threadsafe(
            get_channel_layer().group_send(group, message), _push_loop.get()
        )
        future.result(timeout=SEND_TIMEOUT)
    except Exception:
        log.warning("live push to %s failed", group, exc_info=True)


def push_on_commit(group: str, render: Callable[[], str], *, event_type: str = DESK_HTML) -> None:
    """Render and send after the current transaction commits (at once outside a transaction)."""
    transaction.on_commit(lambda: send(group, render(), event_type=event_type), robust=True)

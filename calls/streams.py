"""Platform event streams, run by ``python manage.py run_streams`` (one process).

One supervised loop (a thread) per signed-in agent session, of the kind the platform's adapter
names in ``Provider.event_stream``:

- **poll** (``POLL``; Huawei's event long poll, ``Provider.poll_event``): one poll after another.
  The adapter keeps its session in ``provider.state`` (Huawei reads ``Set-GUID`` on every answer);
  when it changes (the GUID rotates) the loop persists it to ``PlatformSession.state`` so the
  Celery worker that dials uses the live one. When the platform says the session is gone
  (``Provider.session_lost``: Huawei signs out an agent that has not polled for 2 minutes), the
  loop first adopts a newer session another process stored, else signs the agent in again (and
  back to Ready if the agent was Ready).
- **push** (``PUSH``; the Genesys Bayeux client, ``Provider.open_notifications``) on the session's
  cookies and CSRF token. After a *re*-handshake (``402::Unknown client`` or ``reconnect:
  handshake``) events in the gap are lost, so the loop applies ``Provider.reread``: the agent's
  calls as the stream would have carried them (a state already seen is a no-op), then the agent
  state, so a change made on the platform while disconnected still reaches the desk's presence.

Agent-state signals from both go through ``services.agent_apply_platform_state``, which tells the
echoes of our own requests from changes made on the platform (see "platform-driven presence" in
``calls/services/presence.py``).

Sessions are discovered from ``PlatformSession`` rows (status ``signed_in``) every few seconds;
a loop whose session is signed out stops; a loop that dies is restarted with exponential
backoff and jitter. Every reconnect is logged. SIGTERM/SIGINT stop every loop and the process.
Nothing is kept in memory that another process needs: state lives in the database.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import close_old_connections, connection

from agentdesk.models import Agent, Presence
from calls import selectors, services
from calls.models import PlatformSession, TelephonyAccount
from calls.providers import get_provider, platforms_with, provider_class
from calls.providers.base import POLL, PUSH, Provider, ProviderError

log = logging.getLogger("calls.streams")


def _raw(payload: Any) -> str:
    try:
        return json.dumps(payload, default=str)
    except (TypeError, ValueError):
        return str(payload)


class SessionGone(Exception):
    """The session was signed out on our side: the loop ends without a restart."""


class StreamContext:
    """What one loop needs: its session row, account, agent and a stop flag."""

    def __init__(self, session_id: int, stop: threading.Event):
        self.session_id = session_id
        self.stop = stop
        session = PlatformSession.objects.select_related("account", "agent__user").get(pk=session_id)
        self.account: TelephonyAccount = session.account
        self.agent: Agent = session.agent
        self.login = services.agent_login(agent=self.agent, account=self.account)
        self.initial_state = dict(session.state or {})
        # For the logs: "huawei 101: ..."
        self.name = f"{self.account.platform} {self.login.ref}"

    def session(self) -> PlatformSession:
        session = PlatformSession.objects.filter(pk=self.session_id).first()
        if session is None or session.status != PlatformSession.Status.SIGNED_IN:
            raise SessionGone
        return session

    def save_state(self, state: dict[str, Any]) -> None:
        PlatformSession.objects.filter(pk=self.session_id).update(state=dict(state))

    def apply(self, provider: Provider, payload: Any, source: str = "stream") -> int:
        applied = 0
        for signal in provider.parse(payload):
            event = services.call_apply_signal(
                account=self.account, signal=signal, source=source, raw=_raw(payload), agent=self.agent
            )
            if event is not None and event.applied:
                applied += 1
        return applied


# -- poll ----------------------------------------------------------------------------------------


def poll_loop(ctx: StreamContext) -> None:
    provider = get_provider(ctx.account.config(), dict(ctx.initial_state))
    known = dict(provider.state)  # the session as last stored
    answered_at: float | None = None  # the last poll the platform answered (monotonic)
    log.info("%s: polling events", ctx.name)
    while not ctx.stop.is_set():
        close_old_connections()
        ctx.session()  # raises SessionGone once signed out on our side
        try:
            payload = provider.poll_event(ctx.login)
        except ProviderError as exc:
            if not provider.session_lost(exc):
                raise
            known = _recover(ctx, provider, known, exc, answered_at)
            answered_at = None
            continue
        answered_at = time.monotonic()
        if dict(provider.state) != known:
            known = dict(provider.state)
            ctx.save_state(known)
            log.info("%s: session id rotated; polling with the new one", ctx.name)
        if payload:
            ctx.apply(provider, payload)


# A session lost while we kept polling (an answer this recent) was ended by someone, not for
# idleness: Huawei signs out only an agent that has not polled for 2 minutes.
LISTENING_SECONDS = 60.0


def _recover(
    ctx: StreamContext,
    provider: Provider,
    known: dict[str, Any],
    exc: ProviderError,
    answered_at: float | None,
) -> dict[str, Any]:
    """The platform no longer knows our session. Another process may hold a newer one (a sign-in
    from the desk): adopt it. If we were polling all along, someone signed the agent out (a
    supervisor on the platform, the gateway): respect it, the loop stops. Otherwise the session
    lapsed while nobody polled (this process was down): sign in again."""
    stored = dict(ctx.session().state or {})
    if stored and stored != known:
        log.info("%s: adopting the session stored by another process", ctx.name)
        provider.state.clear()
        provider.state.update(stored)
        return stored
    if answered_at is not None and time.monotonic() - answered_at < LISTENING_SECONDS:
        log.warning("%s: the platform signed the agent out (%s); not signing in again", ctx.name, exc.code)
        services.platform_signed_out(agent=ctx.agent, account=ctx.account)
        raise SessionGone(ctx.name)
    log.warning("%s: the platform dropped the session (%s); signing in again", ctx.name, exc.code)
    # A new platform session: what we ask for is recorded first, so its echoes are known as ours.
    services.platform_ask_sign_in(agent=ctx.agent, account=ctx.account, provider=provider)
    provider.sign_in(ctx.login)
    ctx.save_state(dict(provider.state))
    agent = Agent.objects.get(pk=ctx.agent.pk)
    if agent.presence in (Presence.READY, Presence.ON_CALL, Presence.WRAP_UP):
        services.platform_ask(agent=ctx.agent, account=ctx.account, state=services.READY)
        provider.set_ready(ctx.login)
        ctx.save_state(dict(provider.state))
    return dict(provider.state)


# -- push ----------------------------------------------------------------------------------------


def push_loop(ctx: StreamContext) -> None:
    provider = get_provider(ctx.account.config(), dict(ctx.initial_state))
    lock = threading.Lock()  # the client's thread and this one both touch the DB and the state

    def on_message(message: Any) -> None:
        with lock:
            close_old_connections()
            ctx.apply(provider, message)

    def on_rehandshake() -> None:
        log.warning("%s: re-handshaked; re-reading calls and agent state over REST", ctx.name)
        with lock:
            close_old_connections()
            reread(ctx, provider)

    def on_subscribed() -> None:
        # Listening now: offers may be asked for (the first one after Ready was held back).
        with lock:
            close_old_connections()
            services.session_listening(session_id=ctx.session_id, listening=True)

    client = provider.open_notifications(
        ctx.login, on_message=on_message, on_rehandshake=on_rehandshake, on_subscribed=on_subscribed
    )
    ctx.save_state(dict(provider.state))
    thread = client.start()
    log.info("%s: notification client started", ctx.name)
    saved = dict(provider.state)
    try:
        while not ctx.stop.is_set() and thread.is_alive():
            ctx.stop.wait(1.0)
            with lock:
                close_old_connections()
                ctx.session()
                if dict(provider.state) != saved:
                    saved = dict(provider.state)
                    ctx.save_state(saved)
    finally:
        client.stop(timeout=5)
        try:
            with lock:
                close_old_connections()
                services.session_listening(session_id=ctx.session_id, listening=False)
        except Exception as exc:  # the loop is ending anyway; the next start resets the flag
            log.warning("%s: could not record that it stopped listening: %s", ctx.name, exc)
        connection.close()
    if not ctx.stop.is_set():
        raise RuntimeError("the notification client stopped (advice reconnect=none or a fatal error)")


def reread(ctx: StreamContext, provider: Provider) -> int:
    """Apply what the adapter re-reads after a gap (``Provider.reread``: calls, then the agent
    state) with source ``reread``: the keys are the stream's own, so a state already applied is
    a no-op and a missed one moves the call; echoes of our requests still pending were lost in
    the gap."""
    return sum(
        ctx.apply(provider, payload, source=services.REREAD_SOURCE) for payload in provider.reread(ctx.login)
    )


# The loop for each kind of ``Provider.event_stream``.
LOOPS: dict[str, Callable[[StreamContext], None]] = {POLL: poll_loop, PUSH: push_loop}


def streamed_platforms() -> tuple[str, ...]:
    """Platforms whose signed-in sessions get a loop: agent sessions, and a stream we can run."""
    return tuple(p for p in platforms_with("agent_sessions") if provider_class(p).event_stream in LOOPS)


# -- supervision ------------------------------------------------------------------------------------


class SupervisedLoop(threading.Thread):
    """Runs one session's loop; restarts it with backoff when it dies; ends when the session is
    signed out or the process stops."""

    def __init__(self, session: PlatformSession, stop: threading.Event, *, backoff_max: float = 30.0):
        super().__init__(name=f"stream-{session.account.platform}-{session.pk}", daemon=True)
        self.session_id = session.pk
        self.platform = session.account.platform
        self.process_stop = stop
        self.stop = threading.Event()
        self.backoff_max = backoff_max
        self.restarts = 0

    def halt(self) -> None:
        self.stop.set()

    def _stopping(self) -> bool:
        return self.stop.is_set() or self.process_stop.is_set()

    def run(self) -> None:
        failures = 0
        while not self._stopping():
            started = time.monotonic()
            try:
                close_old_connections()
                loop = LOOPS[provider_class(self.platform).event_stream]
                loop(StreamContext(self.session_id, _Either(self.stop, self.process_stop)))
                if self._stopping():
                    break
            except SessionGone:
                log.info("%s: session signed out; loop ends", self.name)
                break
            except PlatformSession.DoesNotExist:
                break
            except Exception as exc:
                log.warning("%s: loop died: %s", self.name, exc, exc_info=not isinstance(exc, ProviderError))
            finally:
                connection.close()
            if self._stopping():
                break
            if time.monotonic() - started > 60:
                failures = 0  # it ran for a while: start the backoff over
            failures += 1
            self.restarts += 1
            delay = min(self.backoff_max, 0.5 * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            log.warning("%s: restarting in %.1fs (restart %d)", self.name, delay, self.restarts)
            self.stop.wait(delay)


class _Either:
    """A read-only event that is set when either of two events is."""

    def __init__(self, a: threading.Event, b: threading.Event):
        self.a, self.b = a, b

    def is_set(self) -> bool:
        return self.a.is_set() or self.b.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        deadline = time.monotonic() + (timeout or 0)
        while not self.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.a.wait(min(remaining, 0.2))
        return True


class StreamSupervisor:
    """Discovers signed-in sessions and keeps exactly one loop per session."""

    def __init__(self, *, discover_every: float = 3.0, platforms: tuple[str, ...] | None = None):
        self.discover_every = discover_every
        self.platforms = streamed_platforms() if platforms is None else platforms
        self.stop = threading.Event()
        self.loops: dict[int, SupervisedLoop] = {}

    def discover(self) -> None:
        close_old_connections()
        sessions = {s.pk: s for s in selectors.signed_in_sessions(self.platforms)}
        for session_id, loop in list(self.loops.items()):
            if session_id not in sessions or not loop.is_alive():
                loop.halt()
                if not loop.is_alive() or session_id not in sessions:
                    del self.loops[session_id]
        for session_id, session in sessions.items():
            if session_id not in self.loops:
                loop = SupervisedLoop(session, self.stop)
                self.loops[session_id] = loop
                log.info("starting %s for %s", loop.name, session)
                loop.start()

    def run(self) -> None:
        log.info(
            "run_streams: watching %s sessions every %.0fs", ", ".join(self.platforms), self.discover_every
        )
        # Whatever a previous run_streams (killed, not stopped) said it listened to, nobody does now.
        PlatformSession.objects.filter(account__platform__in=self.platforms).update(listening_since=None)
        connection.close()
        while not self.stop.is_set():
            try:
                self.discover()
            except Exception:
                log.exception("run_streams: session discovery failed; trying again")
            finally:
                connection.close()
            self.stop.wait(self.discover_every)
        self.shutdown()

    def shutdown(self, timeout: float = 10.0) -> None:
        self.stop.set()
        for loop in self.loops.values():
            loop.halt()
        deadline = time.monotonic() + timeout
        for loop in self.loops.values():
            loop.join(max(0.1, deadline - time.monotonic()))
        log.info("run_streams: stopped")

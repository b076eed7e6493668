"""Presence: the agent's state on the desk, and the states the platform reports.

The platform may change an agent's state without us: a supervisor on the platform, the phone,
the platform itself. Those changes drive ``Agent.presence``; the echoes of our own requests
(sayfree/saybusy, GWS Ready/NotReady, a skip's saybusy + sayfree) must not. See the comment
above :data:`PLATFORM_PRESENCE` for the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agentdesk.models import Agent, Presence, PresenceSpan
from calls.models import Call, PlatformSession, TelephonyAccount
from calls.providers import provider_class
from calls.providers.base import Provider, ProviderError
from calls.selectors import DESK_STATES
from calls.services import events


def presence_write(agent: Agent, presence: str, *, reason: str | None = None) -> None:
    """The one writer of an agent's presence (the engine's and the desk's): the agent's row, and
    the day's log (``PresenceSpan``: the open span is closed, a new one opened), so time in each
    state adds up. ``reason`` None keeps the current one. Pushes nothing."""
    now = timezone.now()
    fields = ["presence", "presence_changed_at"]
    agent.presence = presence
    agent.presence_changed_at = now
    if reason is not None:
        agent.presence_reason = reason[:80]
        fields.append("presence_reason")
    agent.save(update_fields=fields)
    PresenceSpan.objects.filter(agent=agent, ended_at__isnull=True).update(ended_at=now)
    PresenceSpan.objects.create(
        agent=agent,
        presence=presence,
        reason=agent.presence_reason if presence == Presence.NOT_READY else "",
        started_at=now,
    )


def set_presence(agent: Agent, presence: str, *, reason: str | None = None, push: bool = True) -> bool:
    """Change the agent's presence (and reason, when given); pushes the desk after commit unless
    the caller pushes something richer. False when nothing changed."""
    if agent.presence == presence:
        return False
    presence_write(agent, presence, reason=reason)
    if push:
        events.presence_changed(agent.id)
    return True


# -- platform-driven presence ----------------------------------------------------------------------
#
# The platform may change an agent's state without us: a supervisor on the platform, the phone,
# the platform itself. Those changes drive ``Agent.presence``; the echoes of our own requests
# (sayfree/saybusy, GWS Ready/NotReady, a Huawei skip's saybusy + sayfree) must not. No time-based
# grace: every request records, *before* it is sent, what it asks for (``asked_state``) and the
# agent states it will make the platform report (``asked_echoes``, in order). A reported state is
#
# - an echo when it is among the pending echoes: consumed (with any older ones, lost), ignored;
# - ours when it is what we last asked for and the platform has not reported anything else since
#   (a repeat, or the echo of a request whose echo list was cleared): ignored;
# - external otherwise: the pending echoes are dropped (the platform moved on), and an idle agent
#   (Ready / Not ready, no call on the desk) follows it, with the desk told why.
#
# Both sides lock the PlatformSession row, so an ask, an echo and the desk's save of the asked
# presence are applied one at a time. When the platform's change lands between our request and
# our save, the save is dropped (``platform_ask_stands``): the platform's word wins. When it lands
# before our request's echo (the platform took it first), the echo then counts as external and
# brings the agent back to what we asked: the last word is the platform's either way.
#
# Mapping (adapter ``Signal.state`` for ``kind="agent"``): ``ready`` -> Ready, ``not_ready`` -> Not
# ready. Everything else (Huawei ``work``/``busy``, GWS ``wrap_up``/``offline``, ``other``) is kept
# as an event only: after-call work and talking are the call's doing, and presence while on a call
# or in wrap-up follows the call's life. A Not ready reported during a call is remembered and
# applied when the agent disposes the call (``_presence_after_call``).

READY, NOT_READY = "ready", "not_ready"
PLATFORM_PRESENCE = {READY: Presence.READY, NOT_READY: Presence.NOT_READY}
PLATFORM_REASON = "Set on the platform"
# Signals re-read over REST after a gap (GWS re-handshake): every echo still pending was lost.
REREAD_SOURCE = "reread"
MAX_ECHOES = 8


@dataclass(frozen=True)
class PlatformAsk:
    """One recorded ask: enough to withdraw it when the platform refused the request."""

    session_id: int
    at: datetime
    echoes: tuple[str, ...]
    previous_state: str
    previous_at: datetime | None


def platform_ask(
    *,
    agent: Agent,
    account: TelephonyAccount,
    state: str,
    echoes: tuple[str, ...] | None = None,
    fresh: bool = False,
) -> PlatformAsk | None:
    """Record that AgentDesk is about to ask the platform for agent state ``state``, whose request(s)
    will make the platform report ``echoes`` (default: ``state`` once). ``fresh`` (a new platform
    session) forgets echoes still pending from the old one. Call it *before* sending: outside a
    transaction it commits at once; inside one, the session row stays locked until the commit,
    so the streams process waits for the ask instead of missing it. None where the platform
    has no agent state."""
    if not provider_class(account.platform).agent_sessions:
        return None
    echoes = (state,) if echoes is None else tuple(echoes)
    with transaction.atomic():
        lock_agent(agent)
        # A first sign-in asks before the session row exists.
        session, _ = PlatformSession.objects.select_for_update().get_or_create(agent=agent, account=account)
        ask = PlatformAsk(session.pk, timezone.now(), echoes, session.asked_state, session.asked_at)
        pending = [] if fresh else list(session.asked_echoes or [])
        session.asked_echoes = [*pending, *echoes][-MAX_ECHOES:]
        session.asked_state, session.asked_at = state, ask.at
        session.save(update_fields=["asked_state", "asked_at", "asked_echoes", "updated_at"])
    return ask


def platform_ask_sign_in(*, agent: Agent, account: TelephonyAccount, provider: Provider) -> None:
    """Record a sign-in about to be sent: a new platform session, so no older echo will come, and
    the state the sign-in leaves the agent in counts as asked for (it echoes nothing)."""
    state = provider.signed_in_state()
    if state:
        platform_ask(agent=agent, account=account, state=state, echoes=(), fresh=True)


def ask_withdraw(ask: PlatformAsk | None, exc: ProviderError) -> None:
    """The platform refused the request: no echo will come. A timeout may still have gone
    through, so it stays recorded."""
    if ask is None or exc.ambiguous:
        return
    with transaction.atomic():
        session = PlatformSession.objects.select_for_update().filter(pk=ask.session_id).first()
        if session is None or session.asked_at != ask.at:
            return  # a newer ask (or the platform's word) replaced it
        pending = list(session.asked_echoes or [])
        if ask.echoes and pending[-len(ask.echoes) :] == list(ask.echoes):
            pending = pending[: -len(ask.echoes)]
        session.asked_echoes = pending
        session.asked_state, session.asked_at = ask.previous_state, ask.previous_at
        session.save(update_fields=["asked_state", "asked_at", "asked_echoes", "updated_at"])


def platform_ask_stands(*, agent: Agent, account: TelephonyAccount) -> bool:
    """Whether the desk may now save the presence it asked the platform for: False when the
    platform has reported another state since the ask (its word wins). Locks the agent and
    session rows: call inside the transaction that saves the presence."""
    lock_agent(agent)
    session = lock_session(agent, account.pk)
    return session is None or not session.platform_overrides_ask


def lock_agent(agent: Agent) -> Agent | None:
    """Row locks are taken agent first, then session, everywhere (call_dispose locks the agent
    with the call before it reads the session): the opposite order could deadlock. NO KEY UPDATE:
    rows that merely point at the agent (a skip's Call) can still be written meanwhile."""
    return Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()


def lock_session(agent: Agent, account_id: int) -> PlatformSession | None:
    """The agent's session row on this account, locked (after the agent: see :func:`_lock_agent`)."""
    return PlatformSession.objects.select_for_update().filter(agent=agent, account_id=account_id).first()


def agent_apply_platform_state(
    *, agent: Agent, account: TelephonyAccount, state: str, reason: str = "", reread: bool = False
) -> bool:
    """Apply an agent state the platform reported (see "platform-driven presence" above). Returns
    True when the agent's presence changed. ``reread``: the state was read over REST after a gap,
    so echoes still pending were lost with it."""
    if state not in PLATFORM_PRESENCE:
        return False
    with transaction.atomic():
        locked = lock_agent(agent)
        session = lock_session(agent, account.pk)
        if locked is None or session is None:
            return False
        external = _is_external(session, state, reread=reread)
        session.platform_state, session.platform_state_at = state, timezone.now()
        session.save(update_fields=["asked_echoes", "platform_state", "platform_state_at", "updated_at"])
        if not external:
            return False
        if locked.presence not in (Presence.READY, Presence.NOT_READY):
            return False  # offline, or the call's life decides (on call, wrap-up)
        if Call.objects.filter(agent=locked, state__in=DESK_STATES).exists():
            return False  # a call on the desk: ditto (its presence may not have caught up yet)
        return _presence_from_platform(locked, state, reason)


def _is_external(session: PlatformSession, state: str, *, reread: bool) -> bool:
    """Whether ``state`` (just reported) is a change made outside AgentDesk. Consumes the echo it
    matches, with any older pending echo (those were lost); a change made outside drops them all
    (the platform moved on: they are not coming)."""
    echoes = [] if reread else list(session.asked_echoes or [])
    if state in echoes:
        session.asked_echoes = echoes[echoes.index(state) + 1 :]
        return False
    session.asked_echoes = echoes
    # What we last asked for, with nothing else reported since: ours (a repeat, or an echo whose
    # entry a re-read or an earlier external change cleared).
    external = state != session.asked_state or session.platform_overrides_ask
    if external:
        session.asked_echoes = []
    return external


def _presence_from_platform(agent: Agent, state: str, reason: str = "", *, when: str = "") -> bool:
    """Move the agent to the platform's state and tell the desk why, in plain words."""
    presence = PLATFORM_PRESENCE[state]
    not_ready = presence == Presence.NOT_READY
    if not set_presence(agent, presence, reason=(reason or PLATFORM_REASON) if not_ready else "", push=False):
        return False
    words = f" ({reason})" if reason and not_ready else ""
    label = dict(Presence.choices)[presence]
    events.presence_set_by_platform(agent.id, f"Set {label} on the platform{when}{words}.")
    return True


SIGNED_OUT_BY_PLATFORM = (
    "The telephony platform signed you out (a supervisor on the platform, or the gateway)."
    " Press Ready to sign in again."
)


def platform_signed_out(*, agent: Agent, account: TelephonyAccount) -> bool:
    """The platform ended the agent's session while we were listening (not for idleness): a
    supervisor on the platform or the gateway signed them out. Respected, never undone: the session
    is marked signed out (its stream stops), the agent goes offline, and the desk says why. The
    agent signs in again by going Ready. False when the session was already signed out."""
    with transaction.atomic():
        locked = lock_agent(agent)
        session = lock_session(agent, account.pk)
        if locked is None or session is None or session.status != PlatformSession.Status.SIGNED_IN:
            return False
        session.status = PlatformSession.Status.SIGNED_OUT
        session.state, session.asked_echoes = {}, []
        session.last_error = "Signed out by the platform."
        session.save(update_fields=["status", "state", "asked_echoes", "last_error", "updated_at"])
        set_presence(locked, Presence.OFFLINE, reason="", push=False)
        events.presence_set_by_platform(locked.id, SIGNED_OUT_BY_PLATFORM)
    return True


def presence_after_call(agent: Agent, *, account: TelephonyAccount) -> None:
    """Wrap-up ends in Ready, unless the platform set the agent Not ready while the call's life
    held the presence (a supervisor during the call): then Not ready, and the desk says why. A
    platform without agent state (Ryng) has no session to read."""
    session = lock_session(agent, account.pk) if provider_class(account.platform).agent_sessions else None
    if session is not None and session.platform_state == NOT_READY and session.platform_overrides_ask:
        _presence_from_platform(agent, NOT_READY, when=" during your call")
    else:
        set_presence(agent, Presence.READY)

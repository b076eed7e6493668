"""The calls engine: every write about calls, platform sessions and platform signals.

Services are keyword-only and atomic; side effects (Celery tasks, live pushes) happen only after
the commit (``transaction.on_commit``). Refusals an agent should read raise :class:`DeskError`;
platform failures surface as :class:`calls.providers.base.ProviderError`.

The call's state machine (``calls.models.RANK``) moves one way only: :func:`call_advance` ignores
any state whose rank is not above the current one, so a late, repeated or out-of-order signal
never moves a call backwards. Signals are deduplicated by ``CallEvent(account, key)``.

At most once (DESIGN.md "The call's life"): :func:`call_place` commits the ``DialAttempt`` row and
bumps ``tries`` *before* the platform request. A later run that finds ``tries > 0`` without a
recorded clean failure cannot know whether the request went out, so it looks the call up
(``Provider.lookup_call``) instead of dialing; where a platform has no lookup (Ryng) it waits
for the platform's callbacks or the reconciler and never dials again.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from agentdesk import live
from agentdesk.models import Agent, Presence
from calls import compliance
from calls.models import (
    LIVE_STATES,
    RANK,
    Call,
    CallEvent,
    CallState,
    DialAttempt,
    Platform,
    PlatformSession,
    TelephonyAccount,
)
from calls.providers import get_provider
from calls.providers.base import AgentLogin, DialRequest, DialResult, Provider, ProviderError, Signal
from calls.selectors import DESK_STATES
from campaigns.models import Campaign, Disposition, DoNotCall, Lead

log = logging.getLogger("calls")

TERMINAL_STATES = {CallState.ENDED, CallState.FAILED, CallState.SKIPPED, CallState.DISPOSED}
FAILURE_REASONS = set(Call.FailureReason.values)


class DeskError(Exception):
    """A refusal in words an agent can read (shown on the desk as is)."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


# -- platform identities and sessions ------------------------------------------------------------


def agent_login(*, agent: Agent, account: TelephonyAccount) -> AgentLogin:
    """Who the platform knows ``agent`` as. Passwords come from the account's encrypted
    credentials (Huawei/Genesys agents share the account's agent password in this design)."""
    creds = account.credentials
    password = str(creds.get("agent_password", ""))
    if account.platform == Platform.RYNG:
        return AgentLogin(ref=agent.ryng_agent_id, username=agent.ryng_username)
    if account.platform == Platform.HUAWEI:
        return AgentLogin(ref=agent.huawei_agent_id, password=password, phone=agent.huawei_phone)
    return AgentLogin(ref=agent.genesys_username, password=password, username=agent.genesys_username)


def _session(agent: Agent, account: TelephonyAccount) -> PlatformSession:
    session, _ = PlatformSession.objects.get_or_create(agent=agent, account=account)
    return session


def provider_for(
    *, agent: Agent | None, account: TelephonyAccount
) -> tuple[Provider, PlatformSession | None]:
    """The adapter for ``account``, carrying the agent's persisted platform session (GUID,
    cookies, CSRF token) where the platform has one."""
    if agent is None or account.platform == Platform.RYNG:
        return get_provider(account.config(), {}), None
    session = _session(agent, account)
    return get_provider(account.config(), dict(session.state or {})), session


def session_save_state(session: PlatformSession | None, provider: Provider) -> None:
    """Persist what the adapter learnt (a rotated GUID, new cookies). Saved only when it changed
    so the streams process and workers do not overwrite each other needlessly."""
    if session is None:
        return
    state = dict(provider.state)
    if state != session.state:
        session.state = state
        session.save(update_fields=["state", "updated_at"])


def _on_commit(fn) -> None:
    transaction.on_commit(fn, robust=True)


# -- pushes ---------------------------------------------------------------------------------------


def _push_call(call: Call) -> None:
    """After commit: the agent's desk (desk_push, the desk's module) and the live-calls table of
    the campaign's page."""
    call_id = call.pk

    def push() -> None:
        from agentdesk import desk_push

        fresh = Call.objects.select_related("agent__user", "lead", "campaign", "disposition").get(pk=call_id)
        desk_push.call_changed(fresh)
        from calls.selectors import calls_on_desks

        html = render_to_string(
            "calls/supervisor.html#live_calls",
            {"campaign": fresh.campaign, "calls": calls_on_desks(campaign=fresh.campaign), "oob": True},
        )
        live.send(live.campaign_group(fresh.campaign_id), html, event_type=live.SUPERVISOR_HTML)

    _on_commit(push)


def _push_presence(agent: Agent) -> None:
    def push() -> None:
        from agentdesk import desk_push

        desk_push.presence_changed(agent)

    _on_commit(push)


def _push_platform_error(agent: Agent, message: str, code: str = "") -> None:
    def push() -> None:
        from agentdesk import desk_push

        desk_push.platform_error(agent, message, code)

    _on_commit(push)


def _push_offer(agent: Agent, lead: Lead) -> None:
    def push() -> None:
        from agentdesk import desk_push

        desk_push.offer_arrived(agent, lead)

    _on_commit(push)


def _push_presence_by_platform(agent: Agent, message: str) -> None:
    def push() -> None:
        from agentdesk import desk_push

        desk_push.presence_set_by_platform(agent, message)

    _on_commit(push)


def _set_presence(agent: Agent, presence: str, *, reason: str | None = None, push: bool = True) -> bool:
    """Change the agent's presence (and reason, when given); pushes the desk after commit unless
    the caller pushes something richer. False when nothing changed."""
    if agent.presence == presence:
        return False
    fields = ["presence", "presence_changed_at"]
    agent.presence = presence
    agent.presence_changed_at = timezone.now()
    if reason is not None:
        agent.presence_reason = reason[:80]
        fields.append("presence_reason")
    agent.save(update_fields=fields)
    if push:
        _push_presence(agent)
    return True


# -- the state machine ----------------------------------------------------------------------------


def call_advance(
    *,
    call: Call,
    state: str,
    reason: str = "",
    message: str = "",
    code: str = "",
    data: Mapping[str, Any] | None = None,
) -> bool:
    """Move ``call`` forward to ``state``. Returns False (and changes nothing) when ``state`` is
    not ahead of the current one: the state machine never goes backwards. Saves with
    ``update_fields`` and pushes after commit. Call inside a transaction with ``call`` locked."""
    if state not in RANK or RANK[state] <= RANK[call.state]:
        return False
    now = timezone.now()
    data = data or {}
    fields = ["state", "state_changed_at"]
    call.state = state
    call.state_changed_at = now
    if state in LIVE_STATES and state != CallState.DIAL_REQUESTED and call.dialed_at is None:
        call.dialed_at = now
        fields.append("dialed_at")
    if state == CallState.CONNECTED and call.connected_at is None:
        call.connected_at = now
        fields.append("connected_at")
    if state in (CallState.ENDED, CallState.FAILED) and call.ended_at is None:
        call.ended_at = now
        fields.append("ended_at")
    if state == CallState.FAILED:
        call.failure_reason = reason if reason in FAILURE_REASONS else Call.FailureReason.PLATFORM_ERROR
        call.failure_message = (message or _reason_text(call.failure_reason))[:300]
        call.failure_code = code[:40]
        fields += ["failure_reason", "failure_message", "failure_code"]
    fields += _absorb_data(call, data)
    call.save(update_fields=sorted(set(fields)))
    _agent_presence_for(call)
    _push_call(call)
    return True


def _reason_text(reason: str) -> str:
    return dict(Call.FailureReason.choices).get(reason, "The call failed.")


def _absorb_data(call: Call, data: Mapping[str, Any]) -> list[str]:
    """Details a signal may carry (talk time, recording) whatever the state move."""
    fields = []
    talk = data.get("talk_seconds", data.get("talktime"))
    if talk not in (None, "") and call.talk_seconds is None:
        try:
            call.talk_seconds = max(0, int(float(talk)))
            fields.append("talk_seconds")
        except (TypeError, ValueError):
            pass
    recording = data.get("recording_url", data.get("recordingUrl"))
    if recording and not call.recording_url:
        call.recording_url = str(recording)[:1000]
        fields.append("recording_url")
    log_id = data.get("log_id", data.get("callLogID"))
    if log_id not in (None, "") and not call.platform_log_id:
        call.platform_log_id = str(log_id)
        fields.append("platform_log_id")
    return fields


def _agent_presence_for(call: Call) -> None:
    agent = call.agent
    if call.state in LIVE_STATES and call.state != CallState.DIAL_REQUESTED:
        _set_presence(agent, Presence.ON_CALL)
    elif call.state in (CallState.ENDED, CallState.FAILED):
        _set_presence(agent, Presence.WRAP_UP)


def call_fail(*, call: Call, reason: str, message: str = "", code: str = "") -> bool:
    """Fail the call with a reason the agent reads (no-op if it already ended)."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        moved = call_advance(call=locked, state=CallState.FAILED, reason=reason, message=message, code=code)
        if moved:
            _push_platform_error(locked.agent, locked.failure_message, code)
    call.refresh_from_db()
    return moved


# -- the agent's commands ---------------------------------------------------------------------------


def call_dial(*, agent: Agent, lead: Lead) -> Call:
    """Ask for a dial of ``lead`` (leased to ``agent``). Checks run now and again in the task; the
    platform is called by ``calls.tasks.place_call`` after this commits."""
    with transaction.atomic():
        # The lead row only: its campaign and account are read, never written (see call_place).
        lead = (
            Lead.objects.select_for_update(of=("self",)).select_related("campaign__account").get(pk=lead.pk)
        )
        if lead.lease_owner_id != agent.id:
            raise DeskError("This lead is not leased to you.", code="not_leased")
        if lead.lease_expires_at and lead.lease_expires_at < timezone.now():
            raise DeskError("Your hold on this lead expired; take the next lead.", code="lease_expired")
        live_call = Call.objects.filter(agent=agent, state__in=LIVE_STATES).first()
        if live_call is not None:
            raise DeskError("You are already on a call.", code="busy")
        checks = compliance.dial_checks(lead)
        refusal = checks.first_refusal
        if refusal is not None:
            raise DeskError(refusal.detail, code=f"compliance_{refusal.name}")
        campaign = lead.campaign
        call = Call.objects.create(
            lead=lead,
            campaign=campaign,
            agent=agent,
            account=campaign.account,
            state=CallState.DIAL_REQUESTED,
            state_changed_at=timezone.now(),
            number=lead.number,
            compliance={"click": checks.as_json()},
        )
        lead.status = Lead.Status.IN_PROGRESS
        lead.save(update_fields=["status"])
        _enqueue("place_call", call.pk)
        _push_call(call)
    return call


def call_end(*, agent: Agent, call: Call) -> Call:
    """Hang up. Before the dial went out, the call is simply ended here (the place task then
    finds nothing to do); otherwise ``end_call`` asks the platform."""
    with transaction.atomic():
        call = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        if call.agent_id != agent.id:
            raise DeskError("This call is not yours.", code="not_yours")
        if call.state not in LIVE_STATES:
            raise DeskError("This call has already ended.", code="not_live")
        attempt = DialAttempt.objects.filter(call=call).first()
        if call.state == CallState.DIAL_REQUESTED and (attempt is None or attempt.tries == 0):
            call_advance(call=call, state=CallState.ENDED)
            return call
        _enqueue("end_call", call.pk)
    return call


def call_dispose(
    *,
    agent: Agent,
    call: Call,
    disposition: Disposition,
    notes: str = "",
    callback_at: datetime | None = None,
) -> Call:
    """Record the outcome: apply the disposition to the lead, release the lease, mark the call
    disposed, and on commit tell the platform (``dispose_call``)."""
    now = timezone.now()
    with transaction.atomic():
        call = Call.objects.select_for_update().select_related("agent", "campaign").get(pk=call.pk)
        if call.agent_id != agent.id:
            raise DeskError("This call is not yours.", code="not_yours")
        if call.state in LIVE_STATES:
            raise DeskError("End the call before choosing a disposition.", code="live")
        if call.state not in (CallState.ENDED, CallState.FAILED):
            raise DeskError("This call is already disposed.", code="disposed")
        if disposition.campaign_id != call.campaign_id:
            raise DeskError("That disposition belongs to another campaign.", code="disposition")
        if disposition.outcome == Disposition.Outcome.CALLBACK and (
            callback_at is None or callback_at <= now
        ):
            raise DeskError("Pick a callback time in the future.", code="callback_at")
        lead = Lead.objects.select_for_update().get(pk=call.lead_id)
        _apply_outcome(lead, call.campaign, disposition, notes, callback_at, agent, now)
        call.state = CallState.DISPOSED
        call.state_changed_at = now
        call.disposed_at = now
        call.disposition = disposition
        call.notes = notes
        call.callback_at = callback_at if disposition.outcome == Disposition.Outcome.CALLBACK else None
        call.save(
            update_fields=["state", "state_changed_at", "disposed_at", "disposition", "notes", "callback_at"]
        )
        holder = call.agent  # read with the locked call: the caller's copy may be stale
        if holder.presence == Presence.WRAP_UP:
            _presence_after_call(holder, account_id=call.account_id)
        _enqueue("dispose_call", call.pk)
        _push_call(call)
    return call


def _apply_outcome(
    lead: Lead,
    campaign: Campaign,
    disposition: Disposition,
    notes: str,
    callback_at: datetime | None,
    agent: Agent,
    now: datetime,
) -> None:
    outcome = disposition.outcome
    lead.next_attempt_at = None
    if outcome == Disposition.Outcome.FINAL:
        lead.status = Lead.Status.DONE
    elif outcome == Disposition.Outcome.RETRY:
        delay = disposition.retry_delay_minutes or campaign.retry_delay_minutes
        if campaign.attempt_cap and lead.attempts >= campaign.attempt_cap:
            lead.status = Lead.Status.EXHAUSTED
        else:
            lead.status = Lead.Status.PENDING
            lead.next_attempt_at = now + timedelta(minutes=delay)
    elif outcome == Disposition.Outcome.CALLBACK:
        lead.status = Lead.Status.CALLBACK
        lead.next_attempt_at = callback_at
    elif outcome == Disposition.Outcome.DNC:
        DoNotCall.objects.get_or_create(
            number=lead.number, defaults={"reason": f"Disposition {disposition.name}", "added_by": agent.user}
        )
        lead.status = Lead.Status.DNC
    lead.last_disposition = disposition.name
    lead.last_notes = notes
    lead.lease_owner = None
    lead.lease_expires_at = None
    lead.save(
        update_fields=[
            "status",
            "next_attempt_at",
            "last_disposition",
            "last_notes",
            "lease_owner",
            "lease_expires_at",
        ]
    )


def offer_skip(*, agent: Agent, lead: Lead, reason: str = "") -> None:
    """The platform side of a skip: GWS ``RejectRecord`` (the record goes back to the pool),
    Huawei saybusy + sayfree (whose agent-state echoes are recorded first, so they never move
    the agent's presence); nothing on Ryng. Synchronous (timeouts on every request)."""
    account = lead.campaign.account
    if not lead.offer or account.platform == Platform.RYNG:
        return
    provider, session = provider_for(agent=agent, account=account)
    stay_ready = agent.presence == Presence.READY
    echoes = provider.skip_echoes(stay_ready=stay_ready)
    ask = platform_ask(agent=agent, account=account, state=echoes[-1], echoes=echoes) if echoes else None
    try:
        provider.skip(agent_login(agent=agent, account=account), dict(lead.offer), stay_ready=stay_ready)
    except ProviderError as exc:
        _ask_withdraw(ask, exc)
        raise
    finally:
        session_save_state(session, provider)


# -- platform sessions (synchronous) ------------------------------------------------------------------


def _session_call(agent: Agent, account: TelephonyAccount, op: str, *args: Any) -> PlatformSession | None:
    provider, session = provider_for(agent=agent, account=account)
    login = agent_login(agent=agent, account=account)
    try:
        getattr(provider, op)(login, *args)
    except ProviderError as exc:
        if session is not None:
            session.last_error = exc.message[:300]
            session.state = dict(provider.state)
            session.save(update_fields=["last_error", "state", "updated_at"])
        raise
    if session is not None:
        session.state = dict(provider.state)
        session.last_error = ""
        session.save(update_fields=["state", "last_error", "updated_at"])
    return session


def platform_sign_in(*, agent: Agent, account: TelephonyAccount) -> None:
    """Sign the agent in; ``run_streams`` picks the session up within a few seconds. The state a
    sign-in leaves the agent in counts as asked for (a new session: no older echo will come)."""
    platform_ask_sign_in(agent=agent, account=account, provider=provider_for(agent=None, account=account)[0])
    session = _session_call(agent, account, "sign_in")
    if session is not None:
        session.status = PlatformSession.Status.SIGNED_IN
        session.save(update_fields=["status", "updated_at"])


def platform_sign_out(*, agent: Agent, account: TelephonyAccount) -> None:
    try:
        _session_call(agent, account, "sign_out")
    finally:
        session = PlatformSession.objects.filter(agent=agent, account=account).first()
        if session is not None:
            session.status = PlatformSession.Status.SIGNED_OUT
            session.state = {}
            session.save(update_fields=["status", "state", "updated_at"])


def platform_set_ready(
    *, agent: Agent, account: TelephonyAccount, ready: bool, reason: str = ""
) -> PlatformAsk | None:
    """Ready (Huawei sayfree, GWS Ready) or not ready on the platform. The ask is recorded (and
    committed) before the request goes out, so its echo is known as ours when it arrives."""
    ask = platform_ask(agent=agent, account=account, state=READY if ready else NOT_READY)
    try:
        if ready:
            _session_call(agent, account, "set_ready")
        else:
            _session_call(agent, account, "set_not_ready", reason)
    except ProviderError as exc:
        _ask_withdraw(ask, exc)
        raise
    return ask


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
    so the streams process waits for the ask instead of missing it. None on Ryng (no agent
    state there)."""
    if account.platform == Platform.RYNG:
        return None
    echoes = (state,) if echoes is None else tuple(echoes)
    with transaction.atomic():
        _lock_agent(agent)
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


def _ask_withdraw(ask: PlatformAsk | None, exc: ProviderError) -> None:
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
    _lock_agent(agent)
    session = _lock_session(agent, account.pk)
    return session is None or not session.platform_overrides_ask


def _lock_agent(agent: Agent) -> Agent | None:
    """Row locks are taken agent first, then session, everywhere (call_dispose locks the agent
    with the call before it reads the session): the opposite order could deadlock. NO KEY UPDATE:
    rows that merely point at the agent (a skip's Call) can still be written meanwhile."""
    return Agent.objects.select_for_update(no_key=True).filter(pk=agent.pk).first()


def _lock_session(agent: Agent, account_id: int) -> PlatformSession | None:
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
        locked = _lock_agent(agent)
        session = _lock_session(agent, account.pk)
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
    if not _set_presence(
        agent, presence, reason=(reason or PLATFORM_REASON) if not_ready else "", push=False
    ):
        return False
    words = f" ({reason})" if reason and not_ready else ""
    label = dict(Presence.choices)[presence]
    _push_presence_by_platform(agent, f"Set {label} on the platform{when}{words}.")
    return True


def _presence_after_call(agent: Agent, *, account_id: int) -> None:
    """Wrap-up ends in Ready, unless the platform set the agent Not ready while the call's life
    held the presence (a supervisor during the call): then Not ready, and the desk says why."""
    session = _lock_session(agent, account_id)
    if session is not None and session.platform_state == NOT_READY and session.platform_overrides_ask:
        _presence_from_platform(agent, NOT_READY, when=" during your call")
    else:
        _set_presence(agent, Presence.READY)


def platform_request_offer(*, agent: Agent, campaign: Campaign) -> None:
    """Ask the platform for the next preview offer; it arrives later as an ``offer`` signal."""
    _session_call(agent, campaign.account, "request_offer", campaign.platform_campaign_id)


# -- placing, ending and disposing on the platform (called by tasks) ----------------------------------


@dataclass(frozen=True)
class PlaceOutcome:
    """What :func:`call_place` did. ``retry_in_doubt`` is never set: an unknown outcome waits."""

    status: str  # placed | failed | skipped | waiting | retry
    error: ProviderError | None = None


def callback_urls(call: Call) -> tuple[str, str]:
    """Ryng callback URLs for ``call``: the per-account secret path, plus our call key in the
    query so a callback can find the call even when the dial's answer was lost (worker killed)."""
    return call.account.ryng_callback_urls(call=str(call.key))


def dial_request(call: Call) -> DialRequest:
    connect, terminal = callback_urls(call) if call.account.platform == Platform.RYNG else ("", "")
    lead = call.lead
    number = lead.raw_number if lead.source == Lead.Source.PLATFORM and lead.raw_number else call.number
    return DialRequest(
        agent=agent_login(agent=call.agent, account=call.account),
        number=number,
        customer_name=call.lead.name,
        platform_campaign_id=call.campaign.platform_campaign_id,
        connect_callback_url=connect,
        terminal_callback_url=terminal,
        offer=dict(call.lead.offer or {}),
        idempotency_key=str(call.key),
    )


def _attempt_key(call: Call) -> str:
    return f"dial:{call.key}"


def call_place(*, call_id: int) -> PlaceOutcome:
    """Place the call on the platform, at most once (see the module docstring)."""
    with transaction.atomic():
        # Only the call and its lead are written here. Locking the joined agent and account rows
        # too would deadlock with run_streams, which locks the agent for a platform agent state
        # and then needs the account's key (the CallEvent's foreign key) at commit.
        call = (
            Call.objects.select_for_update(of=("self", "lead"))
            .select_related("lead__campaign", "agent", "account")
            .get(pk=call_id)
        )
        if call.state != CallState.DIAL_REQUESTED:
            return PlaceOutcome("skipped")
        attempt = DialAttempt.objects.select_for_update().filter(call=call).first()
        if attempt is None:
            checks = compliance.dial_checks(call.lead)
            call.compliance = {**call.compliance, "dial": checks.as_json()}
            call.save(update_fields=["compliance"])
            refusal = checks.first_refusal
            if refusal is not None:
                call_advance(
                    call=call,
                    state=CallState.FAILED,
                    reason=Call.FailureReason.COMPLIANCE,
                    message=refusal.detail,
                    code=refusal.name,
                )
                _push_platform_error(call.agent, refusal.detail, refusal.name)
                return PlaceOutcome("failed")
            attempt = DialAttempt.objects.create(call=call, key=_attempt_key(call))
            lead = call.lead
            lead.attempts += 1
            lead.last_called_at = timezone.now()
            lead.save(update_fields=["attempts", "last_called_at"])
        if attempt.status == DialAttempt.Status.PLACED:
            return PlaceOutcome("placed")
        if attempt.status == DialAttempt.Status.FAILED:
            return PlaceOutcome("failed")
        in_doubt = attempt.status == DialAttempt.Status.AMBIGUOUS or (
            attempt.tries > 0 and not attempt.error_code
        )
        if not in_doubt:
            # About to send: this commit is the promise that any later run looks up, never redials.
            attempt.tries += 1
            attempt.error_code = ""
            attempt.error_message = ""
            attempt.save(update_fields=["tries", "error_code", "error_message", "updated_at"])
    request = dial_request(call)
    provider, session = provider_for(agent=call.agent, account=call.account)
    try:
        if in_doubt:
            return _place_in_doubt(call, attempt, provider, request)
        try:
            result = provider.dial(request)
        except ProviderError as exc:
            return _dial_failed(call, attempt, exc)
        _dial_placed(call, attempt, result)
        return PlaceOutcome("placed")
    finally:
        session_save_state(session, provider)


def _place_in_doubt(
    call: Call, attempt: DialAttempt, provider: Provider, request: DialRequest
) -> PlaceOutcome:
    """A request may already have reached the platform: look, never dial blind."""
    try:
        found = provider.lookup_call(request)
    except NotImplementedError:
        # Ryng has no lookup: its callbacks (which carry our call key) or the reconciler decide.
        _attempt_update(
            attempt, DialAttempt.Status.AMBIGUOUS, "no_lookup", "Waiting for the platform's callbacks."
        )
        log.info(
            "call %s: dial outcome unknown and %s has no lookup; waiting", call.pk, call.account.platform
        )
        return PlaceOutcome("waiting")
    except ProviderError as exc:
        if exc.permanent:
            return _dial_failed(call, attempt, exc)
        return PlaceOutcome("retry", exc)
    if found is not None:
        _dial_placed(call, attempt, found)
        return PlaceOutcome("placed")
    # The platform says no call exists: the earlier request never arrived, so sending is safe.
    _attempt_update(attempt, DialAttempt.Status.PENDING, "not_found", "The platform has no such call.")
    return PlaceOutcome(
        "retry",
        ProviderError("Dial not found on the platform; dialing again.", code="not_found", permanent=False),
    )


def _attempt_update(attempt: DialAttempt, status: str, code: str = "", message: str = "") -> None:
    DialAttempt.objects.filter(pk=attempt.pk).update(
        status=status, error_code=code[:40], error_message=message[:300], updated_at=timezone.now()
    )


def _dial_placed(call: Call, attempt: DialAttempt, result: DialResult) -> None:
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        DialAttempt.objects.filter(pk=attempt.pk).update(
            status=DialAttempt.Status.PLACED, error_code="", error_message="", updated_at=timezone.now()
        )
        fields = []
        if result.call_id and not locked.platform_call_id:
            locked.platform_call_id = str(result.call_id)
            fields.append("platform_call_id")
        if result.log_id and not locked.platform_log_id:
            locked.platform_log_id = str(result.log_id)
            fields.append("platform_log_id")
        if fields:
            locked.save(update_fields=fields)
        call_advance(call=locked, state=CallState.DIALING)
    call.refresh_from_db()


def _dial_failed(call: Call, attempt: DialAttempt, exc: ProviderError) -> PlaceOutcome:
    if exc.ambiguous:
        _attempt_update(attempt, DialAttempt.Status.AMBIGUOUS, exc.code or "timeout", exc.message)
        return PlaceOutcome("retry", exc)
    if not exc.permanent:
        # A clean refusal (500, connection refused): recorded, so the next run may send again.
        _attempt_update(attempt, DialAttempt.Status.PENDING, exc.code or "error", exc.message)
        return PlaceOutcome("retry", exc)
    _attempt_update(attempt, DialAttempt.Status.FAILED, exc.code, exc.message)
    call_fail(call=call, reason=Call.FailureReason.PLATFORM_ERROR, message=exc.message, code=exc.code)
    return PlaceOutcome("failed", exc)


def call_place_give_up(*, call_id: int, error: ProviderError | None) -> None:
    """Retries are spent: fail the call with the last reason, shown to the agent."""
    call = Call.objects.get(pk=call_id)
    message = error.message if error else "The telephony platform could not place the call."
    code = error.code if error else ""
    DialAttempt.objects.filter(call=call).exclude(status=DialAttempt.Status.PLACED).update(
        status=DialAttempt.Status.FAILED, error_code=code[:40], error_message=message[:300]
    )
    call_fail(call=call, reason=Call.FailureReason.PLATFORM_ERROR, message=message, code=code)


def call_hang_up(*, call_id: int) -> None:
    call = Call.objects.select_related("agent", "account", "lead").get(pk=call_id)
    if call.state not in LIVE_STATES:
        return
    if not call.platform_call_id and call.account.platform == Platform.GENESYS:
        log.info("call %s: hang-up before the platform call id is known; the reconciler follows it", call.pk)
        return
    provider, session = provider_for(agent=call.agent, account=call.account)
    try:
        provider.hang_up(
            agent_login(agent=call.agent, account=call.account),
            call.platform_call_id,
            log_id=call.platform_log_id,
        )
    except NotImplementedError:
        # Ryng: End Preview Call ends *and* disposes in one request (seed 001), so the call ends
        # on our side now and on the platform when dispose_call sends the disposition.
        with transaction.atomic():
            locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
            call_advance(call=locked, state=CallState.ENDED)
    except ProviderError as exc:
        _push_platform_error(call.agent, exc.message, exc.code)
        raise
    finally:
        session_save_state(session, provider)


def call_platform_dispose(*, call_id: int) -> None:
    """Tell the platform the disposition (Ryng End Preview Call, GWS CompleteRecord or
    RescheduleRecord; nothing on Huawei)."""
    call = Call.objects.select_related("agent", "account", "lead", "disposition").get(pk=call_id)
    if call.disposition is None:
        return
    offer = dict(call.lead.offer or {})
    if not call.platform_call_id and not offer:
        return  # never reached the platform: nothing to dispose there
    outcome = call.disposition.outcome
    provider, session = provider_for(agent=call.agent, account=call.account)
    try:
        provider.dispose(
            agent_login(agent=call.agent, account=call.account),
            call.platform_call_id,
            log_id=call.platform_log_id,
            disposition=call.disposition.name,
            notes=call.notes,
            offer=offer,
            callback_at=int(call.callback_at.timestamp()) if call.callback_at else None,
            final=outcome not in (Disposition.Outcome.RETRY, Disposition.Outcome.CALLBACK),
        )
    finally:
        session_save_state(session, provider)


# -- signals in ---------------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _find_call(
    account: TelephonyAccount, signal: Signal, call_hint: str = "", agent: Agent | None = None
) -> Call | None:
    calls = Call.objects.select_for_update().select_related("agent", "lead")
    if call_hint:
        try:
            found = calls.filter(account=account, key=uuid.UUID(call_hint)).first()
        except ValueError:
            found = None
        if found is not None:
            return found
    if signal.call_id:
        found = calls.filter(account=account, platform_call_id=str(signal.call_id)).first()
        if found is not None:
            return found
    if agent is not None and signal.kind == "call":
        # An agent has one live call on an account. Huawei's AgentOther_PhoneAlerting/Offhook
        # carry no call id: they belong to that call whatever its id. An event with an id we do
        # not know yet may beat the previewCallout answer: it can only be a call still without one.
        live = calls.filter(account=account, agent=agent, state__in=LIVE_STATES)
        if signal.call_id:
            live = live.filter(platform_call_id="")
        return live.order_by("-id").first()
    return None


def call_apply_signal(
    *,
    account: TelephonyAccount,
    signal: Signal,
    source: str,
    raw: str = "",
    agent: Agent | None = None,
    call_hint: str = "",
) -> CallEvent | None:
    """Record and apply one platform signal. A repeat (same ``(account, key)``) returns None and
    changes nothing; a late one is recorded but never moves the call backwards. ``agent`` is the
    session's agent for stream signals; ``call_hint`` our call key from a callback URL."""
    key = (signal.key or "")[:200]
    if not key:
        key = f"nokey:{uuid.uuid4()}"
    try:
        with transaction.atomic():
            if CallEvent.objects.filter(account=account, key=key).exists():
                return None
            call = (
                _find_call(account, signal, call_hint, agent)
                if signal.kind == "call" or signal.call_id
                else None
            )
            event = CallEvent.objects.create(
                account=account,
                call=call,
                source=source[:20],
                kind=(signal.kind or "other")[:20],
                key=key,
                state=(signal.state or "")[:20],
                payload=_jsonable(dict(signal.data or {})),
                raw=raw or _raw_text(signal.raw),
            )
            applied = False
            if signal.kind == "offer" and agent is not None:
                lead_from_offer(account=account, agent=agent, signal=signal)
                applied = True
            elif signal.kind == "agent" and agent is not None and signal.state:
                applied = agent_apply_platform_state(
                    account=account,
                    agent=agent,
                    state=signal.state,
                    reason=signal.reason,
                    reread=source == REREAD_SOURCE,
                )
            elif call is not None:
                applied = _apply_to_call(call, signal)
            if applied:
                event.applied = True
                event.save(update_fields=["applied"])
            return event
    except IntegrityError:
        # Two deliveries raced past the exists() check: the unique key kept exactly one.
        return None


def _raw_text(raw: Any) -> str:
    if raw is None:
        return ""
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    import json

    try:
        return json.dumps(raw)
    except (TypeError, ValueError):
        return str(raw)


def _apply_to_call(call: Call, signal: Signal) -> bool:
    fields = []
    if signal.call_id and not call.platform_call_id:
        call.platform_call_id = str(signal.call_id)[:120]
        fields.append("platform_call_id")
    if fields:
        call.save(update_fields=fields)
    # Any signal about the call proves the dial went out (a killed worker never recorded it).
    DialAttempt.objects.filter(call=call).exclude(status=DialAttempt.Status.PLACED).update(
        status=DialAttempt.Status.PLACED, updated_at=timezone.now()
    )
    data = dict(signal.data or {})
    if signal.state and call_advance(
        call=call,
        state=signal.state,
        reason=signal.reason,
        message=str(data.get("message", "")),
        code=str(data.get("code", "")),
        data=data,
    ):
        if signal.state == CallState.FAILED:
            _push_platform_error(call.agent, call.failure_message, call.failure_code)
        return True
    # Not a move forward: still keep details that arrive late (talk time, recording URL).
    extra = _absorb_data(call, data)
    if extra:
        call.save(update_fields=extra)
        return True
    return False


def lead_from_offer(*, account: TelephonyAccount, agent: Agent, signal: Signal) -> Lead | None:
    """A platform offer (Huawei preview event, GWS preview record) becomes a lead leased to the
    agent, keeping the offer so the dial can cite it (controlid / recordHandle)."""
    data = dict(signal.data or {})
    campaign = _campaign_for_offer(account, data)
    if campaign is None:
        log.warning("offer on %s matches no campaign; kept as an event only", account)
        return None
    record = data.get("record") if isinstance(data.get("record"), Mapping) else {}
    digits = data.get("dialeddigits")
    if isinstance(digits, list | tuple):
        digits = digits[0] if digits else ""
    # Huawei's previewCallout must name one of the offered dialeddigits exactly (seed 003), so the
    # offered text is kept as raw_number and dialed as is; number is our E.164 for checks.
    raw_number = str(
        data.get("number") or digits or data.get("phoneNumber") or record.get("phoneNumber") or ""
    )
    raw_number = raw_number.split(",")[0].strip()
    number = _e164(raw_number, campaign.default_region)
    name, custom = offer_details(data)
    lease_seconds = settings.LEAD_LEASE_SECONDS
    lead = Lead.objects.create(
        campaign=campaign,
        number=number,
        raw_number=raw_number,
        name=name[:200],
        custom_fields=custom,
        source=Lead.Source.PLATFORM,
        offer=_jsonable(data),
        lease_owner=agent,
        lease_expires_at=timezone.now() + timedelta(seconds=lease_seconds),
    )
    _push_offer(agent, lead)
    return lead


NAME_KEYS = ("name", "Name", "customerName", "CustomerName", "GSW_CUSTOMER_NAME")


def offer_details(data: Mapping[str, Any]) -> tuple[str, dict[str, str]]:
    """The customer's name and custom fields carried by an offer: Huawei's opaque ``callData``
    (a JSON object when the campaign put one there, else shown as one field) or a GWS record's
    ``userData`` (its ``GSW_*`` keys are the platform's own bookkeeping, not customer data)."""
    record = data.get("record") if isinstance(data.get("record"), Mapping) else {}
    fields: dict[str, Any] = {}
    if isinstance(record.get("userData"), Mapping):
        fields = {k: v for k, v in record["userData"].items() if not str(k).startswith("GSW_")}
        fields.update({k: v for k, v in record["userData"].items() if k == "GSW_CUSTOMER_NAME"})
    call_data = data.get("callData")
    if isinstance(call_data, str) and call_data.strip():
        try:
            parsed = json.loads(call_data)
        except ValueError:
            parsed = None
        fields = dict(parsed) if isinstance(parsed, Mapping) else {"Call data": call_data}
    name = next((str(fields.pop(key)) for key in NAME_KEYS if fields.get(key)), "")
    name = name or str(data.get("name") or record.get("name") or "")
    custom = {str(k)[:80]: "" if v is None else str(v)[:500] for k, v in fields.items()}
    return name, custom


def _campaign_for_offer(account: TelephonyAccount, data: Mapping[str, Any]) -> Campaign | None:
    campaigns = Campaign.objects.filter(account=account, status=Campaign.Status.ACTIVE)
    record = data.get("record") if isinstance(data.get("record"), Mapping) else {}
    name = data.get("campaignName") or data.get("campaign") or record.get("campaignName")
    if name:
        found = campaigns.filter(platform_campaign_id=str(name)).first()
        if found is not None:
            return found
    return campaigns.order_by("id").first()


def _e164(raw: str, region: str) -> str:
    try:
        from campaigns.phone import Normalized, normalize

        result = normalize(raw, region)
        if isinstance(result, Normalized):
            return result.e164
    except ImportError:
        pass
    return raw[:20]


# -- reconciling ------------------------------------------------------------------------------------


def calls_reconcile(*, stale_after: timedelta | None = None) -> int:
    """Calls stuck in a live state past ``stale_after`` (default ``CALLS_LOST_AFTER_SECONDS``,
    15 min). A dial that certainly never went out (its task was lost) is handed back to
    ``place_call`` once; a dial in doubt is looked up where the platform can; everything else is
    failed with reason "lost" and the agent can dispose it. Returns how many calls were touched."""
    stale_after = stale_after or timedelta(seconds=settings.CALLS_LOST_AFTER_SECONDS)
    now = timezone.now()
    stuck = Call.objects.filter(state__in=LIVE_STATES, state_changed_at__lt=now - stale_after).select_related(
        "account", "agent", "lead", "campaign"
    )
    touched = 0
    for call in stuck:
        attempt = DialAttempt.objects.filter(call=call).first()
        if _reconcile_one(call, attempt, now, stale_after):
            touched += 1
    return touched


def _never_sent(attempt: DialAttempt | None) -> bool:
    """True when no request for this dial can have reached the platform."""
    if attempt is None or attempt.tries == 0:
        return True
    return attempt.status == DialAttempt.Status.PENDING and attempt.error_code not in ("", "no_lookup")


def _reconcile_one(call: Call, attempt: DialAttempt | None, now: datetime, stale_after: timedelta) -> bool:
    if (
        call.state == CallState.DIAL_REQUESTED
        and _never_sent(attempt)
        and call.created_at > now - 2 * stale_after
    ):
        Call.objects.filter(pk=call.pk).update(state_changed_at=now)
        _enqueue("place_call", call.pk)
        return True
    if attempt is not None and not call.platform_call_id and call.account.platform != Platform.RYNG:
        provider, session = provider_for(agent=call.agent, account=call.account)
        try:
            found = provider.lookup_call(dial_request(call))
        except (NotImplementedError, ProviderError):
            found = None
        finally:
            session_save_state(session, provider)
        if found is not None:
            _dial_placed(call, attempt, found)
            Call.objects.filter(pk=call.pk).update(state_changed_at=now)
            return True
    if not call_fail(
        call=call,
        reason=Call.FailureReason.LOST,
        message="No final signal came from the platform; the call is closed.",
        code="lost",
    ):
        return False
    if attempt is not None and attempt.status != DialAttempt.Status.PLACED:
        _attempt_update(attempt, DialAttempt.Status.FAILED, "lost", "No signal from the platform.")
    CallEvent.objects.get_or_create(
        account=call.account,
        key=f"reconcile:lost:{call.key}",
        defaults={
            "call": call,
            "source": "reconcile",
            "kind": "call",
            "state": CallState.FAILED,
            "applied": True,
        },
    )
    return True


def _enqueue(task_name: str, call_id: int) -> None:
    """Enqueue a calls task after the commit (never for a transaction that rolls back)."""

    def send() -> None:
        from calls import tasks

        getattr(tasks, task_name).delay(call_id)

    _on_commit(send)

"""Signals in: every platform signal (a callback, a stream event, a re-read) recorded once and
applied: a call's state, an agent state, an offer that becomes a lead.

Signals are deduplicated by ``CallEvent(account, key)``; a late one is recorded but never moves a
call backwards (:func:`calls.services.life.call_advance`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agentdesk.models import Agent, Presence
from calls import tasks
from calls.models import (
    LIVE_STATES,
    Call,
    CallEvent,
    CallState,
    DialAttempt,
    TelephonyAccount,
)
from calls.providers import provider_class
from calls.providers.base import PLATFORM_CLOSED, Offer, ProviderError, Signal
from calls.services import events
from calls.services.life import absorb_data, call_advance, call_record_skip, on_commit
from calls.services.presence import (
    NOT_READY,
    REREAD_SOURCE,
    agent_apply_platform_state,
    lock_agent,
    lock_session,
    set_presence,
)
from calls.services.sessions import offer_skip, paused_offer_give_back
from campaigns.models import Campaign, Lead
from campaigns.phone import Normalized, normalize

log = logging.getLogger("calls")


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
    try:
        return json.dumps(raw)
    except (TypeError, ValueError):
        return str(raw)


def _apply_to_call(call: Call, signal: Signal) -> bool:
    ids = (call.platform_call_id, call.platform_log_id)
    applied = _move_call(call, signal)
    if (signal.data or {}).get(PLATFORM_CLOSED) and call.platform_end_due_at is not None:
        # The platform confirms our end (a try that timed out went through after all): the
        # retries stop, and a refusal of a later one ("already disposed") is not an error.
        Call.objects.filter(pk=call.pk).update(
            platform_end_due_at=None, platform_end_tries=None, platform_end_error=None
        )
    elif (call.platform_call_id, call.platform_log_id) != ids:
        platform_end_resume(call)
    return applied


def platform_end_resume(call: Call) -> None:
    """A signal brought ids an owed end was waiting for (a dial whose answer was lost): send it
    now, after the commit, instead of at the reconciler's next look."""
    if call.platform_end_due_at is None:
        return
    if not provider_class(call.account.platform).can_end_call(call.platform_call_id, call.platform_log_id):
        return
    if call.state in LIVE_STATES:
        on_commit(lambda: tasks.end_call.delay(call.pk))
    elif call.state == CallState.DISPOSED:
        on_commit(lambda: tasks.dispose_call.delay(call.pk))


def _move_call(call: Call, signal: Signal) -> bool:
    fields = []
    if signal.call_id and not call.platform_call_id:
        call.platform_call_id = str(signal.call_id)[:120]
        fields.append("platform_call_id")
    if fields:
        call.save(update_fields=fields)
    # Any signal about the call proves the dial went out (a killed worker never recorded it).
    # The doubt (its code and words) goes with it: the attempt reads as placed, cleanly.
    DialAttempt.objects.filter(call=call).exclude(status=DialAttempt.Status.PLACED).update(
        status=DialAttempt.Status.PLACED, error_code="", error_message="", updated_at=timezone.now()
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
            events.platform_error(call.agent_id, call.failure_message, call.failure_code)
        return True
    # Not a move forward: still keep details that arrive late (talk time, recording URL).
    extra = absorb_data(call, data)
    if extra:
        call.save(update_fields=extra)
        events.call_details_arrived(call)
        return True
    return False


def lead_from_offer(*, account: TelephonyAccount, agent: Agent, signal: Signal) -> Lead | None:
    """A platform offer (Huawei preview event, GWS preview record) becomes a lead leased to the
    agent, keeping the offer so the dial can cite it (controlid / recordHandle)."""
    data = dict(signal.data or {})
    offer = offer_details(account=account, data=data)
    campaign = _campaign_for_offer(account, offer, agent)
    if campaign is None:
        log.warning("offer on %s matches no campaign; kept as an event only", account)
        return None
    paused = campaign.status != Campaign.Status.ACTIVE
    skipped = None if paused else _skip_of_record(account=account, agent=agent, data=data)
    # The offered text is kept as raw_number and dialed as is (a platform may insist on the exact
    # number it offered, seed 003); number is our E.164 for checks.
    lease_seconds = settings.LEAD_LEASE_SECONDS
    lead = Lead.objects.create(
        campaign=campaign,
        number=_e164(offer.raw_number, campaign.default_region),
        raw_number=offer.raw_number,
        name=offer.name[:200],
        custom_fields=dict(offer.custom_fields),
        source=Lead.Source.PLATFORM,
        offer=_jsonable(data),
        lease_owner=None if paused or skipped else agent,
        lease_expires_at=None if paused or skipped else timezone.now() + timedelta(seconds=lease_seconds),
    )
    if paused:
        # Never on the desk: given back once this commits (requests to the platform).
        on_commit(lambda: paused_offer_give_back(agent=agent, campaign=campaign, lead=lead))
        return lead
    if skipped is not None:
        _offer_decline(agent=agent, lead=lead, skipped=skipped)
        return None
    events.offer_arrived(agent.id)
    return lead


# A re-offered record the agent skipped: its skip's notes, and what the agent reads when only such
# records are left for them.
OFFERED_AGAIN = "Offered again after a skip: given back to the platform"
ONLY_SKIPPED_REASON = "Only skipped leads left"
ONLY_SKIPPED_LEFT = (
    "The platform has only leads you skipped to offer you: you are Not ready. Press Ready to look again."
)


def _skip_of_record(*, account: TelephonyAccount, agent: Agent, data: Mapping[str, Any]) -> Call | None:
    """The agent's latest skip, since they signed in to the platform, of the record this offer
    hands out (its adapter's ``offer_record``), or None."""
    adapter = provider_class(account.platform)
    record = adapter.offer_record(data)
    if not record:
        return None
    # A skip holds these rows (its saybusy + sayfree ask) until it commits, and the gateway may
    # offer the record again before that: wait for the skip instead of missing it.
    lock_agent(agent)
    session = lock_session(agent, account.pk)
    if session is None or session.signed_in_at is None:
        return None
    skips = Call.objects.filter(
        agent=agent, account=account, state=CallState.SKIPPED, created_at__gte=session.signed_in_at
    )
    return next(
        (
            c
            for c in skips.select_related("lead").order_by("-id")
            if adapter.offer_record(c.lead.offer or {}) == record
        ),
        None,
    )


def _offer_decline(*, agent: Agent, lead: Lead, skipped: Call) -> None:
    """A platform offered the agent a record they skipped in this session (whatever it puts back
    in its pool): never shown to them, given back through the platform's own skip, recorded as a
    skip and logged. A record skipped since the agent last became Ready coming back means the
    platform has been round its pool and has only skipped records for them: a Ready agent is
    then left Not ready and told why, instead of being handed them back for ever (a Huawei skip's
    sayfree brings the next offer at once)."""
    agent.refresh_from_db(fields=["presence", "presence_changed_at"])  # locked by _skip_of_record
    ready = agent.presence == Presence.READY
    round_the_pool = agent.presence_changed_at is None or skipped.created_at >= agent.presence_changed_at
    call_record_skip(agent=agent, lead=lead, notes=OFFERED_AGAIN)
    Lead.objects.filter(pk=lead.pk).update(last_notes=OFFERED_AGAIN)
    log.info(
        "offer %s to agent %s is the record they skipped as lead %s: given back%s",
        lead.pk,
        agent.pk,
        skipped.lead_id,
        ", agent left not ready (only skipped records on offer)" if ready and round_the_pool else "",
    )
    try:
        echoes = offer_skip(
            agent=agent, lead=lead, reason=OFFERED_AGAIN, stay_ready=ready and not round_the_pool
        )
    except ProviderError as exc:
        log.warning("giving offer %s back to the platform failed: %s", lead.pk, exc)
        return
    if ready and echoes and echoes[-1] == NOT_READY:
        set_presence(agent, Presence.NOT_READY, reason=ONLY_SKIPPED_REASON, push=False)
        events.presence_set_by_platform(agent.id, ONLY_SKIPPED_LEFT)


def offer_details(*, account: TelephonyAccount, data: Mapping[str, Any]) -> Offer:
    """What an offer's data carries for the lead (number, name, custom fields, campaign), read by
    the account's adapter (``Provider.parse_offer``)."""
    return provider_class(account.platform).parse_offer(data)


def _campaign_for_offer(account: TelephonyAccount, offer: Offer, agent: Agent) -> Campaign | None:
    """The campaign the offer names, else the one the agent works on this account, else the
    account's first active one, else its first (an offer that does not name its campaign belongs
    to the one the account works). Paused or not: a paused campaign's offer is given back."""
    campaigns = Campaign.objects.filter(account=account)
    if offer.campaign_ref:
        found = campaigns.filter(platform_campaign_id=offer.campaign_ref).first()
        if found is not None:
            return found
    return (
        campaigns.filter(pk=agent.desk_campaign_id).first()
        or campaigns.filter(status=Campaign.Status.ACTIVE).order_by("id").first()
        or campaigns.order_by("id").first()
    )


def _e164(raw: str, region: str) -> str:
    result = normalize(raw, region)
    return result.e164 if isinstance(result, Normalized) else raw[:20]

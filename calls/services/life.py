"""The call's life: the state machine and the agent's commands (dial, end, dispose).

The state machine (``calls.models.RANK``) moves one way only: :func:`call_advance` ignores any
state whose rank is not above the current one, so a late, repeated or out-of-order signal never
moves a call backwards. Each move tells the desk after the commit (:mod:`calls.services.events`);
the platform is called by the tasks the commands enqueue after their commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from agentdesk.models import Agent, Presence
from calls import compliance, tasks
from calls.models import LIVE_STATES, NOTES_EDIT_WINDOW, RANK, Call, CallState, DialAttempt
from calls.services import events
from calls.services.errors import Refusal
from calls.services.presence import presence_after_call, set_presence
from campaigns.models import Campaign, Disposition, DoNotCall, Lead

TERMINAL_STATES = {CallState.ENDED, CallState.FAILED, CallState.SKIPPED, CallState.DISPOSED}
FAILURE_REASONS = set(Call.FailureReason.values)


def on_commit(fn) -> None:
    """Run ``fn`` when the transaction commits (never for one that rolls back): how tasks are
    enqueued, ``on_commit(lambda: tasks.place_call.delay(call_id))``."""
    transaction.on_commit(fn, robust=True)


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
    if state in (CallState.ENDED, CallState.FAILED) and call.platform_end_due_at is not None:
        # Over: a hang-up still owed is moot (the disposition owes its own, call_dispose).
        fields += owe_platform_end(call, None)
    if state == CallState.FAILED:
        call.failure_reason = reason if reason in FAILURE_REASONS else Call.FailureReason.PLATFORM_ERROR
        call.failure_message = (message or _reason_text(call.failure_reason))[:300]
        call.failure_code = code[:40]
        fields += ["failure_reason", "failure_message", "failure_code"]
    fields += absorb_data(call, data)
    call.save(update_fields=sorted(set(fields)))
    events.call_changed(call, presence_moved=_agent_presence_for(call))
    return True


def owe_platform_end(call: Call, due: datetime | None) -> list[str]:
    """Set (``due``: the first try's moment) or clear (None) what the platform still has to hear
    of this call's end; returns the fields to save."""
    call.platform_end_due_at = due
    call.platform_end_tries = 0 if due is not None else None
    call.platform_end_error = None
    return ["platform_end_due_at", "platform_end_tries", "platform_end_error"]


def _reason_text(reason: str) -> str:
    return dict(Call.FailureReason.choices).get(reason, "The call failed.")


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 moment a platform sent (UTC when it names no zone), or None."""
    try:
        moment = parse_datetime(str(value or ""))
    except ValueError:  # the right shape, an impossible date
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)


def absorb_data(call: Call, data: Mapping[str, Any]) -> list[str]:
    """Details a signal may carry (talk time, recording, the platform's log id) whatever the state
    move, in the normalized keys the adapters' ``parse`` puts in ``Signal.data``
    (``calls.providers.base.TALK_SECONDS``, ``RECORDING_URL``, ``LOG_ID``)."""
    fields = []
    talk = data.get("talk_seconds")
    if talk not in (None, "") and call.talk_seconds is None:
        try:
            call.talk_seconds = max(0, int(float(talk)))
            fields.append("talk_seconds")
        except (TypeError, ValueError):
            pass
    recording = data.get("recording_url")
    if recording and not call.recording_url:
        call.recording_url = str(recording)[:1000]
        fields.append("recording_url")
    log_id = data.get("log_id")
    if log_id not in (None, "") and not call.platform_log_id:
        call.platform_log_id = str(log_id)
        fields.append("platform_log_id")
    # The platform's own moment the customer connected, when its connect signal never reached us
    # (a dropped callback): the call's talk and connect figures then still add up.
    connected = _moment(data.get("connected_at"))
    if connected is not None and call.connected_at is None:
        call.connected_at = connected
        fields.append("connected_at")
    return fields


def _agent_presence_for(call: Call) -> bool:
    """The presence a call's state puts its agent in; True when it changed (the caller's event
    pushes it, with the call)."""
    agent = call.agent
    if call.state in LIVE_STATES and call.state != CallState.DIAL_REQUESTED:
        return set_presence(agent, Presence.ON_CALL, push=False)
    if call.state in (CallState.ENDED, CallState.FAILED):
        return set_presence(agent, Presence.WRAP_UP, push=False)
    return False


def dial_never_sent(attempt: DialAttempt | None) -> bool:
    """True when no request for this dial can have placed a call: none was sent, or the last one
    was cleanly refused (``PENDING`` with the refusal's code: a retry may follow). A request in
    flight or in doubt (tries, no code; ``AMBIGUOUS``) may have placed one."""
    if attempt is None or attempt.tries == 0:
        return True
    return attempt.status == DialAttempt.Status.PENDING and attempt.error_code not in ("", "no_lookup")


def call_record_skip(*, agent: Agent, lead: Lead, notes: str) -> Call:
    """A lead given back without a call, kept in its history as a skipped call: the agent's skip,
    or a platform's offer of a record they had skipped, given back for them."""
    return Call.objects.create(
        lead=lead,
        campaign=lead.campaign,
        agent=agent,
        account=lead.campaign.account,
        state=CallState.SKIPPED,
        number=lead.number,
        notes=notes,
        state_changed_at=timezone.now(),
    )


def call_fail(*, call: Call, reason: str, message: str = "", code: str = "") -> bool:
    """Fail the call with a reason the agent reads (no-op if it already ended)."""
    with transaction.atomic():
        locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        moved = call_advance(call=locked, state=CallState.FAILED, reason=reason, message=message, code=code)
        if moved:
            events.platform_error(locked.agent_id, locked.failure_message, code)
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
            raise Refusal("This lead is not leased to you.", code="not_leased")
        if lead.lease_expires_at and lead.lease_expires_at < timezone.now():
            raise Refusal("Your hold on this lead expired; take the next lead.", code="lease_expired")
        live_call = Call.objects.filter(agent=agent, state__in=LIVE_STATES).first()
        if live_call is not None:
            raise Refusal("You are already on a call.", code="busy")
        checks = compliance.dial_checks(lead)
        refusal = checks.first_refusal
        if refusal is not None:
            raise Refusal(refusal.detail, code=f"compliance_{refusal.name}")
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
        on_commit(lambda: tasks.place_call.delay(call.pk))
        events.call_changed(call)
    return call


def call_end(*, agent: Agent, call: Call) -> Call:
    """Hang up. Before the dial went out, the call is simply ended here (the place task then
    finds nothing to do); otherwise ``end_call`` asks the platform."""
    with transaction.atomic():
        call = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
        if call.agent_id != agent.id:
            raise Refusal("This call is not yours.", code="not_yours")
        if call.state not in LIVE_STATES:
            raise Refusal("This call has already ended.", code="not_live")
        attempt = DialAttempt.objects.filter(call=call).first()
        if call.state == CallState.DIAL_REQUESTED and dial_never_sent(attempt):
            # Nothing is up on the platform (no request, or every one cleanly refused, a retry
            # waiting): end here. The retry then finds the call over and sends nothing; before,
            # end_call waited for a platform call id that never came, and the reconciler re-dialed
            # the call the agent had ended (make shift: a worker killed during a retry's wait).
            call_advance(call=call, state=CallState.ENDED)
            return call
        # Owed until the platform heard it (calls.services.placing.call_hang_up): a try lost
        # with a killed worker is handed back by the reconciler.
        call.save(update_fields=owe_platform_end(call, timezone.now()))
        on_commit(lambda: tasks.end_call.delay(call.pk))
    return call


DRAFT_NOTES_MAX = 4000
DRAFT_FIELD_MAX = 40


def call_save_draft(*, agent: Agent, call: Call, notes: str, disposition: str, callback_at: str) -> Call:
    """Keep what the agent has typed and chosen for the call's disposition so far (debounced by
    the desk). Only while the call is on their desk; the values are kept as the form sends them
    (bounded), checked only when the disposition is saved."""
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.agent_id != agent.id:
            raise Refusal("This call is not yours.", code="not_yours")
        if call.state not in (*LIVE_STATES, CallState.ENDED, CallState.FAILED):
            raise Refusal("This call is already disposed.", code="disposed")
        if len(notes) > DRAFT_NOTES_MAX:
            raise Refusal(f"Notes are limited to {DRAFT_NOTES_MAX} characters.", code="notes")
        call.draft = {
            "notes": notes,
            "disposition": disposition[:DRAFT_FIELD_MAX],
            "callback_at": callback_at[:DRAFT_FIELD_MAX],
        }
        call.save(update_fields=["draft"])
    return call


def call_correct_notes(*, agent: Agent, call: Call, notes: str) -> Call:
    """Correct a disposed call's notes, by its agent, within :data:`NOTES_EDIT_WINDOW` of the
    disposition. The lead's last notes follow when this call was its last disposition. The
    platform keeps what it was sent with the disposition (no platform takes a correction)."""
    notes = (notes or "").strip()
    if len(notes) > DRAFT_NOTES_MAX:
        raise Refusal(f"Notes are limited to {DRAFT_NOTES_MAX} characters.", code="notes")
    with transaction.atomic():
        call = Call.objects.select_for_update().get(pk=call.pk)
        if call.agent_id != agent.id:
            raise Refusal("This call is not yours.", code="not_yours")
        if call.state != CallState.DISPOSED or call.disposed_at is None:
            raise Refusal("Only a disposed call's notes can be corrected.", code="not_disposed")
        minutes = int(NOTES_EDIT_WINDOW.total_seconds() // 60)
        if timezone.now() >= call.disposed_at + NOTES_EDIT_WINDOW:
            raise Refusal(
                f"Notes can be corrected for {minutes} minutes after the disposition; "
                "this call's are final now.",
                code="notes_final",
            )
        previous = call.notes
        call.notes = notes
        call.save(update_fields=["notes"])
        latest = Call.objects.filter(lead_id=call.lead_id, state=CallState.DISPOSED).order_by(
            "-disposed_at", "-id"
        )
        if latest.values_list("pk", flat=True).first() == call.pk:
            Lead.objects.filter(pk=call.lead_id, last_notes=previous).update(last_notes=notes)
        events.notes_corrected(call)
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
        # The call, its lead and its agent locked in one read (the campaign and the account read,
        # not locked: a lock on the campaign would queue every Save of it behind this one).
        call = (
            Call.objects.select_for_update(of=("self", "lead", "agent"))
            .select_related("agent", "campaign", "lead", "account")
            .get(pk=call.pk)
        )
        if call.agent_id != agent.id:
            raise Refusal("This call is not yours.", code="not_yours")
        if call.state in LIVE_STATES:
            raise Refusal("End the call before choosing a disposition.", code="live")
        if call.state not in (CallState.ENDED, CallState.FAILED):
            raise Refusal("This call is already disposed.", code="disposed")
        if disposition.campaign_id != call.campaign_id:
            raise Refusal("That disposition belongs to another campaign.", code="disposition")
        if disposition.outcome == Disposition.Outcome.CALLBACK and (
            callback_at is None or callback_at <= now
        ):
            raise Refusal("Pick a callback time in the future.", code="callback_at")
        lead = call.lead
        _apply_outcome(lead, call.campaign, disposition, notes, callback_at, agent, now)
        call.state = CallState.DISPOSED
        call.state_changed_at = now
        call.disposed_at = now
        call.disposition = disposition
        call.notes = notes
        call.callback_at = callback_at if disposition.outcome == Disposition.Outcome.CALLBACK else None
        # The platform still has to hear it (Ryng: the call ends there with it): owed until it
        # did (calls.services.placing.call_platform_dispose).
        owed = owe_platform_end(call, now)
        call.save(
            update_fields=[
                "state", "state_changed_at", "disposed_at", "disposition", "notes", "callback_at", *owed
            ]
        )  # fmt: skip
        holder = call.agent  # read with the locked call: the caller's copy may be stale
        if holder.presence == Presence.WRAP_UP:
            presence_after_call(holder, account=call.account)
        on_commit(lambda: tasks.dispose_call.delay(call.pk))
        events.call_left_desk(call)
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

"""Placing, ending and disposing calls on the platform (called by ``calls.tasks``).

At most once (DESIGN.md "The call's life"): :func:`call_place` commits the ``DialAttempt`` row and
bumps ``tries`` *before* the platform request. A later run that finds ``tries > 0`` without a
recorded clean failure cannot know whether the request went out, so it looks the call up
(``Provider.lookup_call``) instead of dialing; where a platform has no lookup it waits for the
platform's signals or the reconciler and never dials again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from calls import compliance
from calls.models import LIVE_STATES, Call, CallState, DialAttempt
from calls.providers.base import DialRequest, DialResult, Provider, ProviderError
from calls.services import events
from calls.services.life import call_advance, call_fail, dial_never_sent
from calls.services.sessions import agent_login, provider_for, session_save_state
from campaigns.models import Disposition, Lead

log = logging.getLogger("calls")

DIAL_IN_DOUBT = (
    "The platform did not say whether the call was placed. If your phone rings, take the call;"
    " if nothing happens, press End (E) and dial again or skip."
)


# -- placing, ending and disposing on the platform (called by tasks) ----------------------------------


@dataclass(frozen=True)
class PlaceOutcome:
    """What :func:`call_place` did. ``retry_in_doubt`` is never set: an unknown outcome waits."""

    status: str  # placed | failed | skipped | waiting | retry
    error: ProviderError | None = None


def callback_urls(call: Call) -> dict[str, str]:
    """The platform's callback URLs for ``call`` by kind (none where it sends no callbacks): the
    per-account secret path, plus our call key in the query so a callback can find the call even
    when the dial's answer was lost (worker killed)."""
    return call.account.callback_urls(call=str(call.key))


def dial_request(call: Call) -> DialRequest:
    urls = callback_urls(call)
    lead = call.lead
    number = lead.raw_number if lead.source == Lead.Source.PLATFORM and lead.raw_number else call.number
    return DialRequest(
        agent=agent_login(agent=call.agent, account=call.account),
        number=number,
        customer_name=call.lead.name,
        platform_campaign_id=call.campaign.platform_campaign_id,
        connect_callback_url=urls.get("connect", ""),
        terminal_callback_url=urls.get("terminal", ""),
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
                events.platform_error(call.agent_id, refusal.detail, refusal.name)
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
        dial_placed(call, attempt, result)
        return PlaceOutcome("placed")
    finally:
        session_save_state(session, provider)


def _place_in_doubt(
    call: Call, attempt: DialAttempt, provider: Provider, request: DialRequest
) -> PlaceOutcome:
    """A request may already have reached the platform: look, never dial blind."""
    if not provider.can_look_up_calls:
        # No lookup (Ryng): its callbacks (which carry our call key) or the reconciler decide.
        # The agent hears at once, in plain words, what they can do meanwhile.
        code = attempt.error_code or "unknown"
        attempt_update(
            attempt, DialAttempt.Status.AMBIGUOUS, "no_lookup", "Waiting for the platform's callbacks."
        )
        log.info(
            "call %s: dial outcome unknown (%s) and %s has no lookup; waiting",
            call.pk,
            code,
            call.account.platform,
        )
        events.dial_note(call.agent_id, DIAL_IN_DOUBT, code)
        return PlaceOutcome("waiting")
    try:
        found = provider.lookup_call(request)
    except ProviderError as exc:
        if exc.permanent:
            return _dial_failed(call, attempt, exc)
        return PlaceOutcome("retry", exc)
    if found is not None:
        dial_placed(call, attempt, found)
        return PlaceOutcome("placed")
    # The platform says no call exists: the earlier request never arrived, so sending is safe.
    attempt_update(attempt, DialAttempt.Status.PENDING, "not_found", "The platform has no such call.")
    return PlaceOutcome(
        "retry",
        ProviderError("Dial not found on the platform; dialing again.", code="not_found", permanent=False),
    )


def attempt_update(attempt: DialAttempt, status: str, code: str = "", message: str = "") -> None:
    DialAttempt.objects.filter(pk=attempt.pk).update(
        status=status, error_code=code[:40], error_message=message[:300], updated_at=timezone.now()
    )


def dial_placed(call: Call, attempt: DialAttempt, result: DialResult) -> None:
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
        attempt_update(attempt, DialAttempt.Status.AMBIGUOUS, exc.code or "timeout", exc.message)
        return PlaceOutcome("retry", exc)
    if not exc.permanent:
        # A clean refusal (500, connection refused): recorded, so the next run may send again.
        attempt_update(attempt, DialAttempt.Status.PENDING, exc.code or "error", exc.message)
        events.dial_note(
            call.agent_id, f"The platform could not start the call: {exc.message} Trying again.", exc.code
        )
        return PlaceOutcome("retry", exc)
    attempt_update(attempt, DialAttempt.Status.FAILED, exc.code, exc.message)
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


def ids_missing_words(label: str) -> str:
    return (
        f"{label} has not sent this call's ids yet (its answer to the dial was lost), so AgentDesk"
        " cannot end the call there. Hang up your phone: the call ends here as soon as"
        f" {label} reports it."
    )


def call_hang_up(*, call_id: int) -> None:
    """The agent's End on the platform. A call the platform may still have is never ended on our
    side alone: without the ids the platform needs, the end stays owed (re-tried when a signal
    brings them, or by the reconciler) and the agent is told to hang up their phone."""
    call = Call.objects.select_related("agent", "account", "lead").get(pk=call_id)
    if call.state not in LIVE_STATES or call.platform_end_due_at is None:
        return  # over already (a late try), or nothing owed
    provider, session = provider_for(agent=call.agent, account=call.account)
    if not provider.can_end_call(call.platform_call_id, call.platform_log_id):
        log.info("call %s: End before %s sent the call's ids; waiting for them", call.pk, provider.label)
        platform_end_waits(call, ids_missing_words(provider.label))
        return
    if provider.ends_on_dispose:
        # Ryng: End Preview Call ends *and* disposes in one request (seed 001), so the call ends
        # on our side now and on the platform when dispose_call sends the disposition.
        with transaction.atomic():
            locked = Call.objects.select_for_update().select_related("agent").get(pk=call.pk)
            call_advance(call=locked, state=CallState.ENDED)
        return
    try:
        provider.hang_up(
            agent_login(agent=call.agent, account=call.account),
            call.platform_call_id,
            log_id=call.platform_log_id,
        )
    finally:
        session_save_state(session, provider)
    # Heard: the platform's own signal (Released, Call_Release) ends the call here.
    Call.objects.filter(pk=call.pk).update(platform_end_due_at=None, platform_end_error=None)


def call_platform_dispose(*, call_id: int) -> None:
    """Tell the platform the disposition (Ryng End Preview Call, GWS CompleteRecord or
    RescheduleRecord; nothing on Huawei), once: a repeat finds nothing owed. On Ryng a call whose
    ids never came waits for them (a late terminal callback brings both)."""
    call = Call.objects.select_related("agent", "account", "lead", "disposition").get(pk=call_id)
    if call.disposition is None or call.platform_end_due_at is None:
        return
    offer = dict(call.lead.offer or {})
    provider, session = provider_for(agent=call.agent, account=call.account)
    if provider.ends_on_dispose and not provider.can_end_call(call.platform_call_id, call.platform_log_id):
        if dial_never_sent(DialAttempt.objects.filter(call=call).first()):
            platform_end_settled(call)  # never reached the platform: nothing to end there
        else:
            log.info("call %s: disposition waits for %s's call ids", call.pk, provider.label)
            platform_end_waits(call, ids_missing_words(provider.label))
        return
    if not call.platform_call_id and not offer:
        platform_end_settled(call)  # never reached the platform: nothing to dispose there
        return
    outcome = call.disposition.outcome
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
    platform_end_settled(call)


# -- what the platform still has to hear of a call's end ----------------------------------------------


def platform_end_settled(call: Call) -> None:
    Call.objects.filter(pk=call.pk).update(
        platform_end_due_at=None, platform_end_tries=None, platform_end_error=None
    )


def platform_end_waits(call: Call, words: str) -> None:
    """The end cannot be sent yet (no ids): owed still, sent at once when a signal brings the ids
    (``signals.platform_end_resume``), else looked at again by the reconciler after a quiet
    spell, up to the maximum call length; the agent hears it once, in plain words."""
    now = timezone.now()
    if (call.ended_at or call.created_at) < now - timedelta(seconds=settings.CALLS_MAX_CALL_SECONDS):
        log.warning("call %s: gave up waiting for the platform's call ids to end it there", call.pk)
        platform_end_settled(call)
        return
    due = now + timedelta(seconds=settings.CALLS_LOST_AFTER_SECONDS)
    told = call.platform_end_error == words[:300]
    Call.objects.filter(pk=call.pk).update(platform_end_due_at=due, platform_end_error=words[:300])
    if not told:
        events.platform_error(call.agent_id, words, "no_ids")


def call_platform_end_retry(*, call_id: int, error: ProviderError, countdown: float) -> bool:
    """A try failed and another follows in ``countdown`` seconds (the task's backoff). Returns
    False when the call is too old to keep trying (``CALLS_MAX_CALL_SECONDS``): given up, said."""
    call = Call.objects.get(pk=call_id)
    if call.platform_end_due_at is None:
        return False
    since = call.ended_at or call.created_at
    if since < timezone.now() - timedelta(seconds=settings.CALLS_MAX_CALL_SECONDS):
        call_platform_end_refused(call_id=call_id, error=error, gave_up=True)
        return False
    tries = (call.platform_end_tries or 0) + 1
    Call.objects.filter(pk=call.pk).update(
        platform_end_due_at=timezone.now() + timedelta(seconds=countdown),
        platform_end_tries=tries,
        platform_end_error=error.message[:300],
    )
    log.info(
        "call %s: the platform did not take its end (try %s: %s); again in %.0fs",
        call.pk,
        tries,
        error,
        countdown,
    )
    if tries == 1:
        events.platform_error(
            call.agent_id,
            f"The platform has not taken the end of your last call yet: {error.message} AgentDesk"
            " keeps trying; if you still hear the customer, hang up your phone.",
            error.code,
        )
    return True


def call_platform_end_refused(*, call_id: int, error: ProviderError, gave_up: bool = False) -> None:
    """The platform refused the end for good (or it is too old to keep trying): nothing more is
    sent; ours stands, and the agent is told in plain words with the platform's code."""
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        return
    if call.platform_end_due_at is None:
        # Settled meanwhile: the platform confirmed an earlier try (Ryng's disposed callback)
        # and refuses this repeat ("already disposed"), as it should.
        log.info("call %s: a repeat of its end refused after the platform confirmed it: %s", call.pk, error)
        return
    log.warning(
        "call %s (platform ids %s/%s, %s): the platform refused its end%s: %s",
        call.pk,
        call.platform_call_id or "-",
        call.platform_log_id or "-",
        call.state,
        " (gave up)" if gave_up else "",
        error,
    )
    platform_end_settled(call)
    what = "the disposition" if call.state == CallState.DISPOSED else "the hang-up"
    if call.platform_end_tries and not gave_up:
        # An earlier try went unanswered (a timeout) and may have been applied: Ryng refuses a
        # second End Preview Call of a call it disposed with the same 500 as a wrong id (seed 001).
        message = (
            f"The platform refused {what} when it was sent again ({error.message}); the earlier try,"
            " which went unanswered, may have been recorded."
        )
    else:
        message = f"The platform did not record {what}: {error.message}"
    events.platform_error(call.agent_id, message, error.code)

"""Writes for the agent desk: leases, skips, presence, the campaign an agent works, and the desk's
compound commands (skip or dispose, then the next lead) in one transaction each.

Services are the only writers (STYLE.md): keyword-only, typed, atomic, and they tell the desk only
after commit (``agentdesk.live`` events). Platform work (sign-in, ready state, offers) goes
through the calls engine (:mod:`calls.services`), which raises
:class:`calls.providers.base.ProviderError` with a plain message and the platform's code;
refusals raise :class:`calls.services.Refusal`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Subquery
from django.utils import timezone

from agentdesk import live
from agentdesk.models import (
    SKIP_OTHER,
    SKIP_OTHER_MAX,
    Agent,
    AuditEntry,
    Presence,
    audit_record,
    not_ready_reasons,
    person_name,
)
from agentdesk.selectors import (
    callback_get_for_agent,
    callbacks_booked_by,
    desk_campaign,
    lead_current_for_agent,
)
from calls import services as engine
from calls.models import LIVE_STATES, Call, CallState, PlatformSession
from calls.providers import provider_class
from calls.providers.base import ProviderError
from calls.services import Refusal
from campaigns import selectors as campaign_selectors
from campaigns.models import Campaign, Disposition, Lead

# Lead statuses an agent may be offered (a callback once its time has come).
OFFERABLE = (Lead.Status.PENDING, Lead.Status.CALLBACK)


def _lease_until():
    # A lease outlives three missed renewals (the desk renews every 20 s), so a slow network or
    # a backgrounded tab keeps its lead, while a closed tab frees it within two minutes.
    return timezone.now() + timedelta(seconds=settings.LEAD_LEASE_SECONDS)


def _offerable(*, agent: Agent, campaign: Campaign, now: datetime):
    """The leads ``agent`` may be offered now, lowest id first. Run after :func:`_promote_due`:
    a lead whose retry delay or callback time has passed has no ``next_attempt_at`` any more, so
    every offerable lead is in ``lead_ready_idx`` and the scan never meets a waiting one."""
    username = agent.user.get_username()
    return (
        # The first three filters are lead_ready_idx's predicate, word for word, so the planner
        # walks that index (campaign, id) and reads the first row that passes the rest.
        Lead.objects.filter(campaign=campaign, status__in=OFFERABLE, next_attempt_at__isnull=True)
        # Platform-born leads are leased by the engine to the agent the platform offered them to.
        .exclude(source=Lead.Source.PLATFORM)
        .filter(Q(lease_owner__isnull=True) | Q(lease_expires_at__lte=now))
        .filter(Q(assigned_agents="") | Q(assigned_agents__contains=f",{username},"))
        .filter(attempts__lt=campaign.attempt_cap)
        .order_by("id")
    )


def _open_zones(*, campaign: Campaign, now: datetime) -> list[str]:
    """The zones of the campaign's ready leads where its calling window is open now."""
    return [
        name
        for name in campaign_selectors.ready_zones(campaign)
        if campaign_selectors.window_open_in(campaign, campaign_selectors.lead_zone_of(name), now)
    ]


def _open_zone_queues(
    *, agent: Agent, campaign: Campaign, now: datetime, zones: list[str] | None = None
) -> list:
    """The offerable leads, one queue per zone whose calling window is open now, the zone with
    the lowest first id first: the desk never offers a lead the dial would refuse for the hour
    (a lead in Sydney is offered while New York sleeps), and each queue is one walk of
    lead_ready_idx (campaign, timezone, id) from its start, never over the closed zones' leads.

    The stored zone is the number's strictest (campaigns.phone); a number whose area code spans
    zones is still checked in every one at dial time."""
    offerable = _offerable(agent=agent, campaign=campaign, now=now)
    if zones is None:
        zones = _open_zones(campaign=campaign, now=now)
    queues = [offerable.filter(timezone=name) for name in zones]
    if len(queues) < 2:
        return queues
    firsts = [(next(iter(queue.values_list("id", flat=True)[:1]), None), queue) for queue in queues]
    return [queue for first, queue in sorted((f for f in firsts if f[0] is not None), key=lambda f: f[0])]


def _promote_due(*, campaign: Campaign, now: datetime) -> int:
    """Clear ``next_attempt_at`` on the campaign's leads whose retry delay or callback time has
    passed, so they join ``lead_ready_idx`` in id order (docs/desk.md, "The queue").

    Nothing reads ``next_attempt_at`` but the queue, for which "not set" and "passed" mean the
    same, so this changes no lead's place. It walks ``lead_queue_idx`` over the due leads only
    (usually none: the beat promotes every 30 s too, :func:`leads_promote_due`). On PostgreSQL
    it skips rows another transaction holds (one promoting them, or a skip or a disposition
    writing them): that transaction makes them ready itself, and a lease running meanwhile
    passes them over exactly as its ``SKIP LOCKED`` passes over a lead another lease holds."""
    due = Lead.objects.filter(campaign=campaign, status__in=OFFERABLE, next_attempt_at__lte=now)
    if settings.IS_POSTGRES:
        locked = due.select_for_update(skip_locked=True, of=("self",)).values("pk")
        due = Lead.objects.filter(campaign=campaign, pk__in=locked)
    # Django refuses FOR UPDATE, even in a subquery, in autocommit; in the caller's transaction
    # (a lease) no savepoint of its own.
    with transaction.atomic(savepoint=False):
        return due.update(next_attempt_at=None)


def leads_promote_due() -> int:
    """Promote the due leads of every active campaign (beat, with the lease expiry): what a
    night of retry delays leaves due is moved a little at a time, not by the morning's first
    lease."""
    now = timezone.now()
    return sum(
        _promote_due(campaign=campaign, now=now)
        for campaign in Campaign.objects.filter(status=Campaign.Status.ACTIVE).only("pk")
    )


def lead_next_for_agent(*, agent: Agent, campaign: Campaign, zones: list[str] | None = None) -> Lead | None:
    """Lease the next lead of ``campaign`` to ``agent`` (or return the one already held); never
    the same lead to two agents (:func:`_lease_first`)."""
    with transaction.atomic(savepoint=False):  # its own transaction, or the caller's
        if not lease_renew(agent=agent):
            _lease_from_queues(agent=agent, campaign=campaign, zones=zones)
        return lead_current_for_agent(agent=agent)


def _lease_from_queues(*, agent: Agent, campaign: Campaign, zones: list[str] | None = None) -> bool:
    """Lease the first offerable lead of the zone queues (:func:`_open_zone_queues`) to an agent
    who holds none, inside the caller's transaction."""
    now = timezone.now()
    if zones is None:  # else the caller promoted before it read the zones (desk_fill)
        _promote_due(campaign=campaign, now=now)
    return any(
        _lease_first(agent=agent, campaign=campaign, candidates=queue)
        for queue in _open_zone_queues(agent=agent, campaign=campaign, now=now, zones=zones)
    )


def callback_next_for_agent(
    *, agent: Agent, campaign: Campaign, zones: list[str] | None = None
) -> Lead | None:
    """Lease a due callback of ``campaign`` before any new lead: the ones this agent booked
    first, then anyone's, in id order. None when the agent holds a lead already (the
    queue renews it) or no callback is due."""
    with transaction.atomic(savepoint=False):
        if lead_current_for_agent(agent=agent) is not None:
            return None
        if not _lease_callback(agent=agent, campaign=campaign, zones=zones):
            return None
        return lead_current_for_agent(agent=agent)


def _lease_callback(*, agent: Agent, campaign: Campaign, zones: list[str] | None = None) -> bool:
    """Lease a due callback to an agent who holds no lead, inside the caller's transaction: the
    same lease as the queue's (:func:`_lease_first`), on the few rows the campaign has in
    callback status (lead_queue_idx). Most campaigns have none due most of the time: one
    indexed probe says so before the agent's own bookings are looked for."""
    now = timezone.now()
    if zones is None:  # else the caller promoted before it read the zones (desk_fill)
        _promote_due(campaign=campaign, now=now)  # a due callback's time is cleared: it is offerable
        zones = _open_zones(campaign=campaign, now=now)
    due = _offerable(agent=agent, campaign=campaign, now=now).filter(
        status=Lead.Status.CALLBACK, timezone__in=zones
    )
    if not due.exists():
        return False
    booked = due.filter(pk__in=callbacks_booked_by(agent).values("lead_id"))
    return any(
        _lease_first(agent=agent, campaign=campaign, candidates=c, panels=(live.CALLBACKS,))
        for c in (booked, due)
    )


def _lease_first(*, agent: Agent, campaign: Campaign, candidates, panels: tuple[str, ...] = ()) -> bool:
    """Lease the first of ``candidates`` (leads of ``campaign``, id order) to ``agent``, inside the
    caller's transaction, in one statement: ``UPDATE ... WHERE campaign_id = ... AND id =
    (SELECT id ... LIMIT 1)`` (the campaign prunes the UPDATE to its partition of the leads).

    Never the same lead to two agents: on PostgreSQL the candidate row is picked with
    ``FOR UPDATE SKIP LOCKED``, so a concurrent lease takes the next row instead of waiting
    (locking exactly one row: more would hide rows from concurrent askers for nothing); on
    SQLite the IMMEDIATE transaction mode (settings) serialises writers at BEGIN. The UPDATE
    re-checks the lease itself (:func:`_lease`) as a last guard."""
    first = candidates.order_by("id").values("id")[:1]
    if settings.IS_POSTGRES:
        first = first.select_for_update(skip_locked=True, of=("self",))
    # "= (scalar subquery)", never "IN (subquery)": PostgreSQL runs a scalar subquery once (an
    # InitPlan); a semi-join may run it again for each row it joins, and each run, its locks
    # re-checked against the rows this UPDATE just leased, would pick another lead.
    leased = _lease(agent=agent, leads=Lead.objects.filter(campaign=campaign, pk=Subquery(first)))
    if leased:
        live.desk_changed(agent.pk, live.PREVIEW, live.CALL, live.DISPOSE, *panels)
    return bool(leased)


def _lease(*, agent: Agent, leads) -> bool:
    """Lease ``leads`` to ``agent`` where nobody holds them (or the lease ran out) or they are
    already the agent's: the UPDATE re-checks the lease itself."""
    free = Q(lease_owner__isnull=True) | Q(lease_expires_at__lte=timezone.now()) | Q(lease_owner=agent)
    return bool(leads.filter(free).update(lease_owner=agent, lease_expires_at=_lease_until()))


@transaction.atomic
def callback_take(*, agent: Agent, lead_id: int) -> Lead:
    """The agent picks one of their callbacks from the list (due or not): it becomes the lead on
    their desk, previewed, for the normal Dial (which runs the dial-time checks). A lead held
    now goes back to the queue. Refused during a call, for another campaign, or while another
    agent holds the lead. 404 (``callback_get_for_agent``) for a lead that is not their callback."""
    lead = callback_get_for_agent(agent=agent, lead_id=lead_id)
    if Call.objects.filter(agent=agent, state__in=[*LIVE_STATES, CallState.ENDED, CallState.FAILED]).exists():
        raise Refusal("Finish the call on your desk first.", code="busy")
    if agent.desk_campaign_id != lead.campaign_id:
        raise Refusal(f"This callback is in {lead.campaign.name}: switch to it first.", code="campaign")
    lead = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("campaign", "campaign__account")
        .get(pk=lead.pk)
    )
    now = timezone.now()
    if lead.lease_owner_id not in (None, agent.id) and lead.lease_expires_at and lead.lease_expires_at > now:
        raise Refusal("Another agent has this lead on their desk.", code="leased")
    _free(Lead.objects.filter(lease_owner=agent).exclude(pk=lead.pk))
    _lease(agent=agent, leads=Lead.objects.filter(pk=lead.pk))
    live.desk_changed(agent.pk, live.PREVIEW, live.CALL, live.DISPOSE, live.CALLBACKS)
    return lead


def lease_renew(*, agent: Agent) -> int:
    """Extend every unexpired lease this agent holds; returns how many (0: the lead is gone)."""
    return Lead.objects.filter(lease_owner=agent, lease_expires_at__gt=timezone.now()).update(
        lease_expires_at=_lease_until()
    )


def _free(leads) -> int:
    """Clear the lease of these leads, except any with a live call: the call, not the tab or a
    supervisor, decides when the agent is done with its lead."""
    return leads.exclude(calls__state__in=LIVE_STATES).update(lease_owner=None, lease_expires_at=None)


def lease_release(*, agent: Agent) -> int:
    """Give back every lead this agent holds that has no live call (sign-out, campaign switch)."""
    return _free(Lead.objects.filter(lease_owner=agent))


@transaction.atomic
def lease_reclaim(*, agent: Agent, by) -> int:
    """A supervisor (``by``) gives the leads an agent holds back to the queue (a desk left open
    on a break, a stuck tab) without waiting for the lease to run out. Never a lead with a live
    call, and never a platform's own offer (the platform keeps those with the agent). The agent's
    desk is told at once; the audit trail records it."""
    released = _free(Lead.objects.filter(lease_owner=agent).exclude(source=Lead.Source.PLATFORM))
    audit_record(
        by=by,
        action=AuditEntry.Action.RELEASE_LEADS,
        agent=agent,
        summary=f"{agent.username}: {released} lead{'' if released == 1 else 's'} back to the queue",
        released=released,
    )
    # On a call the desk is left alone: its card is the call's lead, which stays.
    if released and not live_call_exists(agent=agent):
        message = "A supervisor gave your lead back to the queue."
        live.desk_changed(
            agent.pk, live.PREVIEW, live.CALL, live.ALERT, alert=live.alert(message, level="info")
        )
    return released


def lease_release_expired() -> int:
    """Free leases whose desks stopped renewing (beat, every 30 s)."""
    return _free(Lead.objects.filter(lease_owner__isnull=False, lease_expires_at__lte=timezone.now()))


@transaction.atomic
def lead_skip(*, agent: Agent, lead: Lead, reason: str, other: str = "") -> None:
    """Skip the previewed lead: recorded as a skipped call (so its history shows it), sent to the
    back of the queue after the campaign's retry delay, the lease released, and a platform's
    offer given back on the platform (the engine's ``offer_skip``). ``other``: the agent's own
    words for an "Other" skip, kept with the reason."""
    reason = (reason or "").strip()[:200]
    if not reason:
        raise Refusal("Pick a reason to skip this lead.", code="reason")
    other = " ".join((other or "").split())
    if reason == SKIP_OTHER and other:
        if len(other) > SKIP_OTHER_MAX:
            raise Refusal(f"Say why in {SKIP_OTHER_MAX} characters or fewer.", code="reason")
        reason = f"{SKIP_OTHER}: {other}"
    # The lead row only (its campaign and account are read, never written): locking the account
    # as well would deadlock with run_streams applying this agent's skip echoes (it locks the
    # agent, then needs the account's key at commit, while the skip waits for the agent).
    locked = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("campaign", "campaign__account")
        .get(pk=lead.pk)
    )
    if locked.lease_owner_id != agent.id:
        raise Refusal("This lead is no longer yours.", code="not_leased")
    if locked.calls.filter(state__in=LIVE_STATES).exists():
        raise Refusal("End the call before skipping.", code="live")
    if locked.source == Lead.Source.PLATFORM:
        engine.offer_skip(agent=agent, lead=locked, reason=reason)
    now = timezone.now()
    engine.call_record_skip(agent=agent, lead=locked, notes=f"Skipped: {reason}")
    locked.lease_owner = None
    locked.lease_expires_at = None
    locked.next_attempt_at = now + timedelta(minutes=locked.campaign.retry_delay_minutes)
    locked.last_notes = f"Skipped: {reason}"
    locked.save(update_fields=["lease_owner", "lease_expires_at", "next_attempt_at", "last_notes"])
    live.desk_changed(agent.pk, live.PREVIEW, live.CALL, live.DISPOSE)


def desk_fill(*, agent: Agent, campaign: Campaign | None = None, held: bool = True) -> None:
    """When the agent is Ready with nothing on the desk: lease our next lead, or ask the platform
    where the platform hands out the previews (the offer arrives later as its own event).
    ``held=False``: the caller just took the agent's lead off the desk (a skip, a disposition),
    so there is no lease to renew."""
    campaign = campaign or desk_campaign(agent=agent)
    if campaign is None or agent.presence != Presence.READY:
        return
    if Call.objects.filter(agent=agent, state__in=[*LIVE_STATES, CallState.ENDED, CallState.FAILED]).exists():
        return
    if not provider_class(campaign.platform).offers_leads:
        with transaction.atomic(savepoint=False):
            if held and lease_renew(agent=agent):
                return  # the lead on the desk stays (its lease renewed)
            # A due callback comes before new leads. The zones open now, read once for both
            # (ready_zones' probes), after the due leads joined.
            now = timezone.now()
            _promote_due(campaign=campaign, now=now)
            zones = _open_zones(campaign=campaign, now=now)
            if not _lease_callback(agent=agent, campaign=campaign, zones=zones):
                _lease_from_queues(agent=agent, campaign=campaign, zones=zones)
    elif lead_current_for_agent(agent=agent) is None:
        engine.platform_request_offer(agent=agent, campaign=campaign)


PRESENCE_FIELDS = ("presence", "presence_reason", "presence_changed_at", "desk_campaign_id")


def _then_next_lead(
    *, agent: Agent, campaign_of: Callable[[], Campaign | None], command: Callable[[], Agent | None]
) -> None:
    """Run a command that takes the lead off the desk (skip, dispose), then fill the desk.

    Our own next lead is leased in the command's transaction, so no event in between can show an
    empty desk. A platform's offer is asked for after the commit: that is an HTTP request to the
    platform, and the offer arrives as its own event.

    ``command`` may return the agent's row as it read it locked (the disposition moves Wrap-up
    back to Ready on that row): its presence is the one now, and no other transaction can change
    it before the commit. Otherwise the presence is read again."""
    with transaction.atomic():
        locked = command()
        if locked is not None:
            for name in PRESENCE_FIELDS:
                setattr(agent, name, getattr(locked, name))
        else:
            agent.refresh_from_db(fields=PRESENCE_FIELDS)
        campaign = campaign_of()
        from_platform = campaign is not None and provider_class(campaign.platform).offers_leads
        if not from_platform:
            desk_fill(agent=agent, campaign=campaign, held=False)
    if from_platform:
        desk_fill(agent=agent, campaign=campaign, held=False)


def lead_skip_then_next(*, agent: Agent, lead: Lead, reason: str, other: str = "") -> None:
    """Skip the lead, then the next one (the desk's Skip)."""
    _then_next_lead(
        agent=agent,
        campaign_of=lambda: desk_campaign(agent=agent),
        command=lambda: lead_skip(agent=agent, lead=lead, reason=reason, other=other),
    )


def call_dispose_then_next(
    *, agent: Agent, call: Call, disposition: Disposition, notes: str, callback_at: datetime | None
) -> None:
    """Record the disposition, then the next lead (the desk's Save & next)."""
    _then_next_lead(
        agent=agent,
        campaign_of=lambda: desk_campaign(agent=agent) or call.campaign,
        command=lambda: (
            engine.call_dispose(
                agent=agent, call=call, disposition=disposition, notes=notes, callback_at=callback_at
            ).agent
        ),
    )


def agent_select_campaign(*, agent: Agent, campaign: Campaign | None) -> None:
    """Switch the campaign the agent works. Leads held in another campaign are released, and a
    platform session on another account is signed out (an agent works one platform at a time)."""
    previous = desk_campaign(agent=agent)
    if previous is not None and campaign is not None and previous.pk == campaign.pk:
        return
    if live_call_exists(agent=agent):
        raise Refusal("Finish the call before switching campaign.", code="busy")
    lease_release(agent=agent)
    leaving = previous is not None and provider_class(previous.platform).agent_sessions
    if leaving and (campaign is None or campaign.account_id != previous.account_id):
        _platform_sign_out(agent=agent, account=previous.account)
    agent.desk_campaign = campaign
    agent.save(update_fields=["desk_campaign"])
    if agent.presence == Presence.READY:
        _save_presence(agent, Presence.NOT_READY, "Switching campaign")
    live.desk_changed(agent.pk, live.MAIN)


def live_call_exists(*, agent: Agent) -> bool:
    return Call.objects.filter(agent=agent, state__in=LIVE_STATES).exists()


# What an agent may set on the desk; On call and the rest follow the call's life.
AGENT_PRESENCES = (Presence.READY, Presence.NOT_READY, Presence.WRAP_UP, Presence.OFFLINE)


def agent_set_presence(
    *, agent: Agent, presence: str, reason: str = "", campaign: Campaign | None = None
) -> None:
    """Set the agent's presence, and where agents have a state on the platform, that state too.

    Ready signs the agent in to the platform first when needed; Offline signs out and releases the
    held lead. A platform refusal raises ``ProviderError`` and leaves the presence unchanged, so
    the desk never shows Ready while the platform thinks otherwise. Refused during a live call:
    the call's life owns the presence until it ends (wrap-up may then be left by hand).
    """
    if presence in Presence.values and presence not in AGENT_PRESENCES:
        label = Presence(presence).label
        raise Refusal(f"{label} follows your calls: it cannot be set by hand.", code="presence")
    if presence not in AGENT_PRESENCES:
        raise Refusal("Unknown presence.", code="presence")
    if live_call_exists(agent=agent):
        # The desk disables these buttons during a call; a stale tab or a hand-made POST does not.
        label = Presence(presence).label
        raise Refusal(f"You are on a call: {label} can be set when it ends.", code="busy")
    campaign = campaign or desk_campaign(agent=agent)
    if presence == Presence.NOT_READY:
        reason = _not_ready_reason(campaign, reason)
    if presence == Presence.READY and campaign is None:
        raise Refusal("Pick a campaign first.", code="campaign", level="info")
    asked = False
    sessions = campaign is not None and provider_class(campaign.platform).agent_sessions
    if sessions:
        asked = _platform_presence(agent=agent, account=campaign.account, presence=presence, reason=reason)
    if presence == Presence.OFFLINE:
        lease_release(agent=agent)
    with transaction.atomic():
        if asked and not engine.platform_ask_stands(agent=agent, account=campaign.account):
            # The platform reported another state after our request (a supervisor on the
            # platform): the streams process applied it, and the platform's word wins.
            agent.refresh_from_db()
            return
        _save_presence(agent, presence, reason if presence == Presence.NOT_READY else "")


def _save_presence(agent: Agent, presence: str, reason: str) -> None:
    engine.presence_write(agent, presence, reason=reason)
    # The preview too: Ready looks for a lead, anything else stops looking; the day's times.
    live.desk_changed(agent.pk, live.PRESENCE, live.PREVIEW, live.DAY)


def _signed_in(*, agent: Agent, account) -> bool:
    return PlatformSession.objects.filter(
        agent=agent, account=account, status=PlatformSession.Status.SIGNED_IN
    ).exists()


def _platform_presence(*, agent: Agent, account, presence: str, reason: str) -> bool:
    """Set the state on the platform; True when an agent state was asked for (the engine
    recorded the ask, so the platform's echo is known as ours)."""
    signed_in = _signed_in(agent=agent, account=account)
    if presence == Presence.OFFLINE:
        if signed_in:
            engine.platform_sign_out(agent=agent, account=account)
        return False
    if not signed_in:
        engine.platform_sign_in(agent=agent, account=account)
    if presence == Presence.READY:
        engine.platform_set_ready(agent=agent, account=account, ready=True)
        return True
    if presence in (Presence.NOT_READY, Presence.WRAP_UP):
        engine.platform_set_ready(agent=agent, account=account, ready=False, reason=reason or presence)
        return True
    return False


def _platform_sign_out(*, agent: Agent, account) -> None:
    if not _signed_in(agent=agent, account=account):
        return
    try:
        engine.platform_sign_out(agent=agent, account=account)
    except ProviderError as exc:
        live.desk_changed(agent.pk, live.ALERT, alert=live.alert(exc.message, exc.code))


def agent_signed_out(*, agent: Agent) -> None:
    """The person left the product: free their lead and sign them out of every platform."""
    lease_release(agent=agent)
    for session in PlatformSession.objects.filter(agent=agent, status=PlatformSession.Status.SIGNED_IN):
        _platform_sign_out(agent=agent, account=session.account)
    if agent.presence != Presence.OFFLINE:
        _save_presence(agent, Presence.OFFLINE, "")


# -- a supervisor's interventions (each recorded: AuditEntry) ----------------------------------------


def _intervention_refused(agent: Agent) -> None:
    if live_call_exists(agent=agent):
        raise Refusal(f"{agent.username} is on a call: try again when it ends.", code="busy")


def _not_ready_reason(campaign: Campaign | None, reason: str, *, required: bool = False) -> str:
    """``reason`` if it is one of the campaign's Not-ready reasons (the first of them when
    empty, unless ``required``); else a refusal that names them."""
    reasons = not_ready_reasons(campaign)
    if not reason and not required:
        return reasons[0]
    if reason not in reasons:
        raise Refusal(f"Pick a Not-ready reason from the list: {', '.join(reasons)}.", code="reason")
    return reason


def agent_force_not_ready(*, agent: Agent, by, reason: str) -> None:
    """A supervisor (``by``) sets an agent Not ready with a reason from the list: on the platform
    too where agents have a state there (``agent_set_presence``, which leaves the presence alone
    if the platform refuses). Refused for an agent on a call (the call's life owns the presence)
    or offline (Not ready would sign them in). The desk says who and why; the audit records it."""
    agent.refresh_from_db()
    reason = _not_ready_reason(desk_campaign(agent=agent), reason, required=True)
    _intervention_refused(agent)
    if agent.presence == Presence.OFFLINE:
        raise Refusal(f"{agent.username} is offline.", code="offline")
    agent_set_presence(agent=agent, presence=Presence.NOT_READY, reason=reason)
    with transaction.atomic():
        audit_record(
            by=by,
            action=AuditEntry.Action.NOT_READY,
            agent=agent,
            campaign=agent.desk_campaign,
            summary=f"{agent.username}: Not ready, {reason}",
            reason=reason,
        )
        message = f"A supervisor ({person_name(by)}) set you Not ready: {reason}."
        live.desk_changed(agent.pk, live.PRESENCE, live.ALERT, alert=live.alert(message, level="info"))


def agent_force_sign_out(*, agent: Agent, by) -> None:
    """A supervisor (``by``) signs an agent out: their leads go back to the queue, every platform
    session is signed out (``agent_signed_out``, as when the agent signs out), and they are
    Offline. Their browser stays signed in to the product: the desk shows Offline and Ready signs
    them in again. Refused during a call (platforms refuse a sign-out mid-call). A platform that
    refuses the sign-out is told to the desk by ``agent_signed_out`` and recorded here."""
    agent.refresh_from_db()
    _intervention_refused(agent)
    released = lease_release(agent=agent)
    agent_signed_out(agent=agent)
    still = list(
        PlatformSession.objects.filter(agent=agent, status=PlatformSession.Status.SIGNED_IN).values_list(
            "account__name", flat=True
        )
    )
    with transaction.atomic():
        summary = f"{agent.username}: signed out, {released} lead{'' if released == 1 else 's'} released"
        if still:
            summary += f"; still signed in on {', '.join(still)}"
        audit_record(
            by=by,
            action=AuditEntry.Action.SIGN_OUT,
            agent=agent,
            campaign=agent.desk_campaign,
            summary=summary,
            released=released,
            platform_sessions_left=still,
        )
        message = f"A supervisor ({person_name(by)}) signed you out."
        live.desk_changed(agent.pk, live.MAIN, alert=live.alert(message, level="info"))

"""Writes for the agent desk: leases, skips, presence, the campaign an agent works.

Services are the only writers (STYLE.md): keyword-only, typed, atomic, and they push to the desk
only after commit (``agentdesk.desk_push``). Platform work (Huawei/Genesys sign-in, ready state,
offers) goes through the calls engine's ``platform_*`` services, which raise
``calls.providers.base.ProviderError`` with a plain message and the platform's code.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from agentdesk import desk_push
from agentdesk.models import Agent, Presence
from campaigns.models import Campaign, Lead

# A lease outlives three missed renewals (the desk renews every 20 s), so a slow network or a
# backgrounded tab keeps its lead, while a closed tab frees it within two minutes.
# Platforms whose agents sign in and whose previews come from the platform (telephony.md).
PLATFORM_SESSION_PLATFORMS = ("huawei", "genesys")
NOT_READY_REASONS = ["Break", "Lunch", "Meeting", "Training", "Coaching"]
SKIP_REASONS = ["Not a good time", "Wrong campaign", "Bad data", "Duplicate", "Other"]
# Lead statuses an agent may be offered (a callback once its time has come).
OFFERABLE = (Lead.Status.PENDING, Lead.Status.CALLBACK)


class DeskRefusal(Exception):
    """A desk action that cannot be done now, in words for the agent."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.message = message
        self.code = code


def _lease_until():
    return timezone.now() + timedelta(seconds=settings.LEAD_LEASE_SECONDS)


def lead_current_for_agent(*, agent: Agent) -> Lead | None:
    """The lead this agent holds (an unexpired lease), if any."""
    return (
        Lead.objects.select_related("campaign", "campaign__account")
        .filter(lease_owner=agent, lease_expires_at__gt=timezone.now())
        .order_by("-lease_expires_at")
        .first()
    )


def _offerable(*, agent: Agent, campaign: Campaign):
    now = timezone.now()
    username = agent.user.get_username()
    return (
        Lead.objects.filter(campaign=campaign, status__in=OFFERABLE)
        # Platform-born leads are leased by the engine to the agent the platform offered them to.
        .exclude(source=Lead.Source.PLATFORM)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .filter(Q(lease_owner__isnull=True) | Q(lease_expires_at__lte=now))
        .filter(Q(assigned_agents="") | Q(assigned_agents__contains=f",{username},"))
        .filter(attempts__lt=campaign.attempt_cap)
        .order_by("id")
    )


def lead_next_for_agent(*, agent: Agent, campaign: Campaign) -> Lead | None:
    """Lease the next lead of ``campaign`` to ``agent`` (or return the one already held).

    Never the same lead to two agents: on PostgreSQL the candidate row is locked with
    ``SELECT ... FOR UPDATE SKIP LOCKED``, so a concurrent request takes the next row instead of
    waiting; on SQLite the IMMEDIATE transaction mode (settings) serialises writers at BEGIN.
    The lease condition is re-checked in the UPDATE itself as a last guard.
    """
    with transaction.atomic():
        held = lead_current_for_agent(agent=agent)
        if held is not None:
            Lead.objects.filter(pk=held.pk).update(lease_expires_at=_lease_until())
            return held
        qs = _offerable(agent=agent, campaign=campaign)
        if settings.IS_POSTGRES:
            qs = qs.select_for_update(skip_locked=True, of=("self",))
        # Lock exactly one row: locking more would hide rows from concurrent askers for nothing.
        candidate_id = next(iter(qs.values_list("id", flat=True)[:1]), None)
        if candidate_id is None:
            return None
        taken = (
            Lead.objects.filter(pk=candidate_id)
            .filter(Q(lease_owner__isnull=True) | Q(lease_expires_at__lte=timezone.now()))
            .update(lease_owner=agent, lease_expires_at=_lease_until())
        )
        if taken:
            return Lead.objects.select_related("campaign", "campaign__account").get(pk=candidate_id)
    return None


def lease_renew(*, agent: Agent) -> int:
    """Extend every unexpired lease this agent holds; returns how many (0: the lead is gone)."""
    return Lead.objects.filter(lease_owner=agent, lease_expires_at__gt=timezone.now()).update(
        lease_expires_at=_lease_until()
    )


def _free(leads) -> int:
    """Clear the lease of these leads, except any with a live call: the call, not the tab or a
    supervisor, decides when the agent is done with its lead."""
    from calls.models import LIVE_STATES

    return leads.exclude(calls__state__in=LIVE_STATES).update(lease_owner=None, lease_expires_at=None)


def lease_release(*, agent: Agent) -> int:
    """Give back every lead this agent holds that has no live call (sign-out, campaign switch)."""
    return _free(Lead.objects.filter(lease_owner=agent))


@transaction.atomic
def lease_reclaim(*, agent: Agent) -> int:
    """A supervisor gives the leads an agent holds back to the queue (a desk left open on a
    break, a stuck tab) without waiting for the lease to run out. Never a lead with a live call,
    and never a platform's own offer (Huawei / Genesys keep those with the agent). The agent's
    desk is told at once."""
    released = _free(Lead.objects.filter(lease_owner=agent).exclude(source=Lead.Source.PLATFORM))
    if released:
        desk_push.lead_reclaimed(agent)
    return released


def lease_release_expired() -> int:
    """Free leases whose desks stopped renewing (beat, every 30 s)."""
    return _free(Lead.objects.filter(lease_owner__isnull=False, lease_expires_at__lte=timezone.now()))


@transaction.atomic
def lead_skip(*, agent: Agent, lead: Lead, reason: str) -> None:
    """Skip the previewed lead: recorded as a skipped call (so its history shows it), sent to the
    back of the queue after the campaign's retry delay, the lease released, and on Genesys the
    record rejected on the platform (the engine's ``offer_skip``)."""
    from calls.models import Call, CallState

    reason = (reason or "").strip()[:200]
    if not reason:
        raise DeskRefusal("Pick a reason to skip this lead.")
    # The lead row only (its campaign and account are read, never written): locking the account
    # as well would deadlock with run_streams applying this agent's skip echoes (it locks the
    # agent, then needs the account's key at commit, while the skip waits for the agent).
    locked = (
        Lead.objects.select_for_update(of=("self",))
        .select_related("campaign", "campaign__account")
        .get(pk=lead.pk)
    )
    if locked.lease_owner_id != agent.id:
        raise DeskRefusal("This lead is no longer yours.")
    if locked.calls.filter(state__in=list(_live_states())).exists():
        raise DeskRefusal("End the call before skipping.")
    _offer_skip(agent=agent, lead=locked, reason=reason)
    now = timezone.now()
    Call.objects.create(
        lead=locked,
        campaign=locked.campaign,
        agent=agent,
        account=locked.campaign.account,
        state=CallState.SKIPPED,
        number=locked.number,
        notes=f"Skipped: {reason}",
        state_changed_at=now,
    )
    locked.lease_owner = None
    locked.lease_expires_at = None
    locked.next_attempt_at = now + timedelta(minutes=locked.campaign.retry_delay_minutes)
    locked.last_notes = f"Skipped: {reason}"
    locked.save(update_fields=["lease_owner", "lease_expires_at", "next_attempt_at", "last_notes"])


def _live_states():
    from calls.models import LIVE_STATES

    return LIVE_STATES


def _offer_skip(*, agent: Agent, lead: Lead, reason: str) -> None:
    if lead.source != Lead.Source.PLATFORM:
        return
    try:
        from calls.services import offer_skip
    except ImportError:  # the engine has not landed yet; the platform just re-offers later
        return
    offer_skip(agent=agent, lead=lead, reason=reason)


def agent_select_campaign(
    *, agent: Agent, campaign: Campaign | None, previous: Campaign | None = None
) -> None:
    """Switch the campaign the agent works. Leads held in another campaign are released, and a
    platform session on another account is signed out (an agent works one platform at a time)."""
    if previous is not None and campaign is not None and previous.pk == campaign.pk:
        return
    lease_release(agent=agent)
    leaving_platform = previous is not None and previous.platform in PLATFORM_SESSION_PLATFORMS
    if leaving_platform and (campaign is None or campaign.account_id != previous.account_id):
        _platform_sign_out(agent=agent, account=previous.account)
    if agent.presence == Presence.READY:
        _save_presence(agent, Presence.NOT_READY, "Switching campaign")


def agent_set_presence(
    *, agent: Agent, presence: str, reason: str = "", campaign: Campaign | None = None
) -> None:
    """Set the agent's presence, and on Huawei/Genesys campaigns the platform's state too.

    Ready signs the agent in to the platform first when needed; Offline signs out and releases the
    held lead. A platform refusal raises ``ProviderError`` and leaves the presence unchanged, so
    the desk never shows Ready while the platform thinks otherwise.
    """
    if presence not in Presence.values:
        raise DeskRefusal("Unknown presence.")
    if presence == Presence.NOT_READY and not reason:
        reason = NOT_READY_REASONS[0]
    asked = False
    if campaign is not None and campaign.platform in PLATFORM_SESSION_PLATFORMS:
        asked = _platform_presence(agent=agent, account=campaign.account, presence=presence, reason=reason)
    if presence == Presence.OFFLINE:
        lease_release(agent=agent)
    with transaction.atomic():
        if asked and not _ask_stands(agent=agent, account=campaign.account):
            # The platform reported another state after our request (a supervisor on the
            # platform): the streams process applied it, and the platform's word wins.
            agent.refresh_from_db()
            return
        _save_presence(agent, presence, reason if presence == Presence.NOT_READY else "")


def _save_presence(agent: Agent, presence: str, reason: str) -> None:
    agent.presence = presence
    agent.presence_reason = reason
    agent.presence_changed_at = timezone.now()
    agent.save(update_fields=["presence", "presence_reason", "presence_changed_at"])
    desk_push.presence_changed(agent)


def _platform_presence(*, agent: Agent, account, presence: str, reason: str) -> bool:
    """Set the state on the platform; True when an agent state was asked for (the engine
    recorded the ask, so the platform's echo is known as ours)."""
    from calls import services as engine
    from calls.models import PlatformSession

    signed_in = PlatformSession.objects.filter(
        agent=agent, account=account, status=PlatformSession.Status.SIGNED_IN
    ).exists()
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


def _ask_stands(*, agent: Agent, account) -> bool:
    from calls import services as engine

    return engine.platform_ask_stands(agent=agent, account=account)


def _platform_sign_out(*, agent: Agent, account) -> None:
    from calls.models import PlatformSession
    from calls.providers.base import ProviderError

    if not PlatformSession.objects.filter(
        agent=agent, account=account, status=PlatformSession.Status.SIGNED_IN
    ).exists():
        return
    try:
        from calls import services as engine

        engine.platform_sign_out(agent=agent, account=account)
    except ProviderError as exc:
        desk_push.platform_error(agent, exc.message, exc.code)


def agent_signed_out(*, agent: Agent) -> None:
    """The person left the product: free their lead and sign them out of every platform."""
    from calls.models import PlatformSession

    lease_release(agent=agent)
    for session in PlatformSession.objects.filter(agent=agent, status=PlatformSession.Status.SIGNED_IN):
        _platform_sign_out(agent=agent, account=session.account)
    if agent.presence != Presence.OFFLINE:
        _save_presence(agent, Presence.OFFLINE, "")


def request_platform_offer(*, agent: Agent, campaign: Campaign) -> None:
    """Ask the platform for the next preview (Genesys preview record; Huawei offers on its own
    once ready). The offer arrives later through the engine and ``desk_push.offer_arrived``."""
    from calls import services as engine

    if hasattr(engine, "platform_request_offer"):
        engine.platform_request_offer(agent=agent, campaign=campaign)

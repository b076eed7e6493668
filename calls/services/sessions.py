"""Platform sessions: who the platform knows an agent as, the adapter with the agent's persisted
session (GUID, cookies, CSRF token), and the synchronous agent-session requests (sign in and
out, ready and not ready, ask for an offer, give an offer back, a paused campaign's offers).

Every request that makes the platform report an agent state records its ask first
(:mod:`calls.services.presence`), so the echo is known as ours when it arrives.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from agentdesk import live
from agentdesk.models import Agent, Presence
from calls.models import Call, PlatformIdentity, PlatformSession, TelephonyAccount
from calls.providers import get_provider, provider_class
from calls.providers.base import PUSH, AgentLogin, Identity, Provider, ProviderError
from calls.selectors import DESK_STATES
from calls.services.presence import (
    NOT_READY,
    READY,
    PlatformAsk,
    ask_withdraw,
    platform_ask,
    platform_ask_sign_in,
    set_presence,
)
from campaigns.models import Campaign, Lead


def agent_identity(*, agent: Agent, platform: str) -> Identity:
    """The agent's stored identity on ``platform`` (empty when none is set)."""
    row = PlatformIdentity.objects.filter(agent=agent, platform=platform).first()
    return row.as_identity() if row is not None else Identity()


def agent_login(*, agent: Agent, account: TelephonyAccount) -> AgentLogin:
    """Who the platform knows ``agent`` as: the adapter builds it from the agent's identity on
    the account's platform and the account's encrypted credentials (agents on a platform with
    sessions share the account's agent password in this design)."""
    identity = agent_identity(agent=agent, platform=account.platform)
    return provider_class(account.platform).agent_login(identity, account.credentials)


def _session(agent: Agent, account: TelephonyAccount) -> PlatformSession:
    session, _ = PlatformSession.objects.get_or_create(agent=agent, account=account)
    return session


def provider_for(
    *, agent: Agent | None, account: TelephonyAccount
) -> tuple[Provider, PlatformSession | None]:
    """The adapter for ``account``, carrying the agent's persisted platform session (GUID,
    cookies, CSRF token) where the platform has one."""
    if agent is None or not provider_class(account.platform).agent_sessions:
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
        session.signed_in_at = timezone.now()
        session.save(update_fields=["status", "signed_in_at", "updated_at"])


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
        ask_withdraw(ask, exc)
        raise
    return ask


def platform_request_offer(*, agent: Agent, campaign: Campaign) -> bool:
    """Ask the platform for the next preview offer; it arrives later as an ``offer`` signal.

    On a platform that pushes its offers (GWS CometD) the offer is sent once, to whoever listens:
    asked for before ``run_streams`` listens to this session, it would go nowhere and the record
    would stay handed to the agent on the platform. So it is asked for only once the stream
    listens (:func:`session_listening` asks then); False when it was not asked now."""
    if provider_class(campaign.platform).event_stream == PUSH:
        listening = PlatformSession.objects.filter(
            agent=agent, account=campaign.account, listening_since__isnull=False
        ).exists()
        if not listening:
            return False
    _session_call(agent, campaign.account, "request_offer", campaign.platform_campaign_id)
    return True


def session_listening(*, session_id: int, listening: bool) -> None:
    """``run_streams`` started (or stopped) listening to a session's pushed messages. When it
    starts, an agent who is Ready on that account with nothing on the desk is asked an offer for:
    the one a Ready asked for before the stream listened was held back (:func:`platform_request_offer`)."""
    session = PlatformSession.objects.select_related("agent", "account").filter(pk=session_id).first()
    if session is None:
        return
    PlatformSession.objects.filter(pk=session_id).update(
        listening_since=timezone.now() if listening else None
    )
    agent = session.agent
    campaign = agent.desk_campaign
    if (
        not listening
        or session.status != PlatformSession.Status.SIGNED_IN
        or agent.presence != Presence.READY
        or campaign is None
        or campaign.account_id != session.account_id
        or Call.objects.filter(agent=agent, state__in=DESK_STATES).exists()
        or Lead.objects.filter(lease_owner=agent, lease_expires_at__gt=timezone.now()).exists()
    ):
        return
    platform_request_offer(agent=agent, campaign=campaign)


def offer_skip(
    *,
    agent: Agent,
    lead: Lead,
    reason: str = "",
    stay_ready: bool | None = None,
    retry_at: datetime | None = None,
) -> tuple[str, ...]:
    """The platform side of a skip: GWS ``RescheduleRecord`` after the campaign's retry delay
    (or at ``retry_at``), Huawei saybusy + sayfree (whose agent-state echoes are recorded first,
    so they never move the agent's presence); nothing on Ryng. Synchronous (timeouts on every
    request).

    ``stay_ready``: whether a Ready agent stays Ready on the platform (default: when they are
    Ready here). Returns the agent states the skip makes the platform report (its echoes)."""
    account = lead.campaign.account
    provider, session = provider_for(agent=agent, account=account)
    if not lead.offer or not provider.offers_leads:
        return ()
    if stay_ready is None:
        stay_ready = agent.presence == Presence.READY
    echoes = provider.skip_echoes(stay_ready=stay_ready)
    ask = platform_ask(agent=agent, account=account, state=echoes[-1], echoes=echoes) if echoes else None
    try:
        retry_at = retry_at or timezone.now() + timedelta(minutes=lead.campaign.retry_delay_minutes)
        provider.skip(
            agent_login(agent=agent, account=account),
            dict(lead.offer),
            stay_ready=stay_ready,
            retry_at=int(retry_at.timestamp()),
        )
    except ProviderError as exc:
        ask_withdraw(ask, exc)
        raise
    finally:
        session_save_state(session, provider)
    return echoes


# -- a paused campaign whose platform hands out the leads ---------------------------------------------

# The Not-ready reason of an agent whose campaign a supervisor paused.
CAMPAIGN_PAUSED = "Campaign paused"


def campaign_paused_on_platform(*, campaign: Campaign) -> None:
    """A supervisor paused ``campaign``. Where the platform hands out its leads, the platform
    would go on offering its records to a Ready agent, and no vendor page documents pausing a
    campaign there (docs/providers.md): so each agent working it who is not on a call is set Not
    ready (:data:`CAMPAIGN_PAUSED`) here and on the platform, and the offer they hold goes back
    (:func:`paused_offer_give_back`). Synchronous (timeouts on every request)."""
    if not provider_class(campaign.platform).offers_leads:
        return
    now = timezone.now()
    agents = Agent.objects.filter(desk_campaign=campaign).exclude(presence=Presence.OFFLINE)
    for agent in agents.exclude(calls__state__in=DESK_STATES).distinct():
        held = (
            Lead.objects.filter(campaign=campaign, source=Lead.Source.PLATFORM, lease_owner=agent)
            .filter(lease_expires_at__gt=now, calls__isnull=True)
            .first()
        )
        paused_offer_give_back(agent=agent, campaign=campaign, lead=held)


def paused_offer_give_back(*, agent: Agent, campaign: Campaign, lead: Lead | None) -> None:
    """``agent`` works ``campaign``, paused, whose platform hands out the leads. A Ready agent is
    set Not ready (:data:`CAMPAIGN_PAUSED`) on the platform and here, so it offers them nothing
    more (Huawei offers the next record to a Ready agent at once); ``lead``, an offer of the
    campaign, is never on the desk: it goes back through the adapter's skip, due again at once
    (the campaign asks for nothing while paused), and leaves the agent. A platform's refusal is
    told to the agent's desk in its words."""
    agent.refresh_from_db()
    try:
        if agent.presence == Presence.READY:
            platform_set_ready(agent=agent, account=campaign.account, ready=False, reason=CAMPAIGN_PAUSED)
            set_presence(agent, Presence.NOT_READY, reason=CAMPAIGN_PAUSED)
        if lead is not None:
            offer_skip(agent=agent, lead=lead, reason=CAMPAIGN_PAUSED, retry_at=timezone.now())
    except ProviderError as exc:
        live.desk_changed(agent.pk, live.ALERT, alert=live.alert(exc.message, exc.code))
    if lead is not None:
        Lead.objects.filter(pk=lead.pk, lease_owner=agent).update(
            lease_owner=None, lease_expires_at=None, last_notes=f"Given back: {CAMPAIGN_PAUSED.lower()}"
        )
        live.desk_changed(agent.pk, live.PREVIEW, live.CALL, live.DISPOSE)

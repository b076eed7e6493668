"""Reads for campaigns, leads, uploads and the do-not-call list (services do the writes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone

from calls.models import Call
from campaigns import phone
from campaigns.models import Campaign, DoNotCall, Lead, LeadCount, SheetUpload

DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# -- campaigns ---------------------------------------------------------------------------------------


def _counted(*statuses: str) -> Coalesce:
    """The campaign's leads in ``statuses`` (all when none), from its counters
    (:class:`~campaigns.models.LeadCount`): a few rows, whatever the number of leads."""
    rows = LeadCount.objects.filter(campaign=OuterRef("pk"))
    if statuses:
        rows = rows.filter(status__in=statuses)
    return Coalesce(Subquery(rows.values("campaign").annotate(s=Sum("n")).values("s")[:1]), 0)


def campaign_list() -> QuerySet[Campaign]:
    """Campaigns with lead counts by status, for the dashboard (one query, over the counters)."""
    return Campaign.objects.select_related("account").annotate(
        lead_total=_counted(),
        lead_pending=_counted(Lead.Status.PENDING),
        lead_callback=_counted(Lead.Status.CALLBACK),
        lead_done=_counted(Lead.Status.DONE, Lead.Status.EXHAUSTED),
        lead_dnc=_counted(Lead.Status.DNC),
    )


def lead_counts(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each campaign's leads by status (every status, 0 when none), from the counters."""
    counts = {pk: dict.fromkeys(Lead.Status.values, 0) for pk in campaign_ids}
    for campaign_id, status, n in LeadCount.objects.filter(campaign__in=campaign_ids).values_list(
        "campaign", "status", "n"
    ):
        counts[campaign_id][status] = n
    return counts


def campaign_get(*, campaign_id: int) -> Campaign:
    """The one way supervisor views fetch a campaign (every supervisor sees every campaign;
    the views are already behind ``supervisor_required``). 404 when unknown."""
    return get_object_or_404(Campaign.objects.select_related("account"), pk=campaign_id)


def campaign_counts(campaign: Campaign) -> dict[str, int]:
    counts = lead_counts([campaign.pk])[campaign.pk]
    counts["total"] = sum(counts.values())
    return counts


def upload_get(*, campaign: Campaign, upload_id: int) -> SheetUpload:
    return get_object_or_404(SheetUpload.objects.select_related("campaign"), pk=upload_id, campaign=campaign)


def uploads_for(campaign: Campaign, limit: int = 10) -> QuerySet[SheetUpload]:
    return campaign.uploads.order_by("-created_at")[:limit]


def dnc_list(*, query: str = "") -> QuerySet[DoNotCall]:
    rows = DoNotCall.objects.select_related("added_by")
    if query:
        rows = rows.filter(Q(number__contains=query) | Q(reason__icontains=query))
    return rows


def is_dnc(number: str) -> bool:
    return DoNotCall.objects.filter(number=number).exists()


# -- export ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportFilter:
    """Which leads the results export keeps (``campaigns.forms.ExportFilterForm``); empty = all.
    Dates are the local days (``TIME_ZONE``) of the lead's last call, both ends included; the
    agent is the agent of the lead's latest call (the export's ``agent`` column)."""

    date_from: date | None = None
    date_to: date | None = None
    disposition: str = ""
    status: str = ""
    agent_id: int | None = None


def export_leads(*, campaign: Campaign, only: ExportFilter | None = None) -> Iterator[dict[str, Any]]:
    """Every lead (or those ``only`` keeps) with its latest call's talk time, recording and agent
    (one query, streamed)."""
    only = only or ExportFilter()
    latest = Call.objects.filter(lead=OuterRef("pk")).order_by("-created_at", "-id")
    leads = Lead.objects.filter(campaign=campaign)
    if only.date_from:
        leads = leads.filter(last_called_at__date__gte=only.date_from)
    if only.date_to:
        leads = leads.filter(last_called_at__date__lte=only.date_to)
    if only.disposition:
        leads = leads.filter(last_disposition=only.disposition)
    if only.status:
        leads = leads.filter(status=only.status)
    if only.agent_id:
        leads = leads.alias(latest_agent=Subquery(latest.values("agent_id")[:1])).filter(
            latest_agent=only.agent_id
        )
    rows = (
        leads.order_by("id")
        .annotate(
            talk_seconds=Subquery(latest.values("talk_seconds")[:1]),
            recording_url=Subquery(latest.values("recording_url")[:1]),
            agent=Subquery(latest.values("agent__user__username")[:1]),
            call_notes=Subquery(latest.values("notes")[:1]),
        )
        .values(
            "id",
            "number",
            "raw_number",
            "name",
            "status",
            "attempts",
            "last_disposition",
            "last_notes",
            "call_notes",
            "last_called_at",
            "talk_seconds",
            "recording_url",
            "agent",
            "timezone",
            "assigned_agents",
            "custom_fields",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        row["notes"] = row.pop("last_notes") or row.pop("call_notes") or ""
        row.pop("call_notes", None)
        row["recording_url"] = row["recording_url"] or ""
        row["agent"] = row["agent"] or ""
        yield row


# -- calling windows ----------------------------------------------------------------------------------


def zone_named(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def lead_zones(lead: Lead) -> list[ZoneInfo]:
    """Every zone the lead's number may be in (an area code can straddle zones), the stored zone
    first. Unknown numbers fall back to UTC so a check never crashes; the stored zone wins."""
    names = [lead.timezone] if lead.timezone else []
    names += [z for z in phone.zones_for(lead.number) if z not in names]
    zones = [z for z in (zone_named(n) for n in names) if z is not None]
    return zones or [ZoneInfo("UTC")]


def lead_local_time(lead: Lead, at: datetime | None = None) -> datetime:
    """The lead's local time now (or at ``at``), in its stored zone."""
    return (at or timezone.now()).astimezone(lead_zones(lead)[0])


def window_open_in(campaign: Campaign, zone: ZoneInfo, at: datetime) -> bool:
    """Is ``at`` inside the campaign's calling window (days and hours) in ``zone``?"""
    local = at.astimezone(zone)
    return str(local.weekday()) in (campaign.window_days or "") and window_contains(
        local.time(), campaign.window_start, campaign.window_end
    )


def window_opens_in(campaign: Campaign, zone: ZoneInfo, now: datetime) -> datetime | None:
    """The next moment the campaign's window opens in ``zone`` (within a week), or None."""
    local = now.astimezone(zone)
    for day in range(8):
        date = (local + timedelta(days=day)).date()
        if str(date.weekday()) not in (campaign.window_days or ""):
            continue
        opens = datetime.combine(date, campaign.window_start, tzinfo=zone)
        if opens > now:
            return opens
    return None


def next_window_opening(campaign: Campaign, now: datetime) -> datetime | None:
    """When the calling window next opens for a ready lead of the campaign that waits for it
    (None if none waits): what the desk says while every ready lead is outside its window."""
    opens = [
        window_opens_in(campaign, zone, now)
        for zone in map(lead_zone_of, ready_zones(campaign))
        if not window_open_in(campaign, zone, now)
    ]
    return min((at for at in opens if at is not None), default=None)


def lead_zone_of(name: str) -> ZoneInfo:
    """The zone a stored ``Lead.timezone`` names; UTC for none (as :func:`lead_zones`)."""
    return zone_named(name) or ZoneInfo("UTC")


# The ready leads' zones, one index probe each (a loose scan of lead_ready_idx's zone column):
# a campaign has a handful of zones and a million leads.
_READY_ZONES_SQL = """
WITH RECURSIVE zone(name) AS (
    (SELECT timezone FROM campaigns_lead WHERE {ready} ORDER BY timezone LIMIT 1)
    UNION ALL
    SELECT (SELECT timezone FROM campaigns_lead WHERE {ready} AND timezone > zone.name
            ORDER BY timezone LIMIT 1)
    FROM zone WHERE zone.name IS NOT NULL
)
SELECT name FROM zone WHERE name IS NOT NULL
"""
_READY = (
    "campaign_id = %s AND status IN ('pending', 'callback') AND next_attempt_at IS NULL"
    " AND NOT (source = 'platform')"
)


def ready_zones(campaign: Campaign) -> list[str]:
    """The distinct ``timezone`` values of the campaign's ready leads (lead_ready_idx), "" for
    leads of no known zone. On PostgreSQL a loose index scan (one probe a zone); SQLite, the
    embedded default, reads the index's zone column whole."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute(_READY_ZONES_SQL.format(ready=_READY), [campaign.pk, campaign.pk])
            return [name for (name,) in cur.fetchall()]
    return list(
        Lead.objects.filter(
            campaign=campaign,
            status__in=[Lead.Status.PENDING, Lead.Status.CALLBACK],
            next_attempt_at__isnull=True,
        )
        .exclude(source=Lead.Source.PLATFORM)
        .order_by("timezone")
        .values_list("timezone", flat=True)
        .distinct()
    )


def window_contains(local: time, start: time, end: time) -> bool:
    if start <= end:
        return start <= local < end
    return local >= start or local < end  # a window that crosses midnight


def calling_window_status(lead: Lead, at: datetime | None = None) -> tuple[bool, str]:
    """``(allowed, reason)``: may this lead be called at ``at`` (now by default)?

    The strictest reading: the call is allowed only when the moment is inside the campaign's
    window (``window_start`` <= local time < ``window_end``, on an allowed weekday) in *every*
    zone the number may be in. So a number whose area code spans Eastern and Central time opens
    when it is ``window_start`` in Central and closes when it is ``window_end`` in Eastern.
    """
    campaign = lead.campaign
    moment = at or timezone.now()
    start, end = campaign.window_start, campaign.window_end
    local = moment
    for zone in lead_zones(lead):
        local = moment.astimezone(zone)
        if str(local.weekday()) not in (campaign.window_days or ""):
            return False, f"{DAY_NAMES[local.weekday()]} is not a calling day ({zone.key})"
        if not window_contains(local.time(), start, end):
            return (
                False,
                f"It is {local:%H:%M} in {zone.key}; calls are allowed {start:%H:%M}-{end:%H:%M}",
            )
    return True, f"It is {lead_local_time(lead, moment):%H:%M} for the lead"

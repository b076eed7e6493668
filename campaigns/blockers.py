"""Why nothing is dialable: a campaign's remaining leads broken down by what holds each back now.

A supervisor whose agents sit idle asks this. Each remaining lead (waiting or with a callback,
not a platform's own offer) is counted once, under the first of these that holds it:

1. the campaign is paused;
2. its number is on the do-not-call list (put there after the lead was made: a do-not-call
   disposition of the same number in another campaign, or while the lead was on a call; the desk
   refuses to dial it);
3. its attempts are used up (the cap was lowered, or a callback was booked on the last one);
4. it is leased to an agent (previewed on a desk now);
5. its callback is not due yet;
6. its retry delay is not over;
7. it is outside the calling window now, in the lead's own zone;
8. it is assigned to agents none of whom is signed in;

and otherwise it is dialable now. Each reason says when the next of its leads open up.

One aggregate query over the campaign's remaining leads (on PostgreSQL, the campaign's own
partition), grouped by the lead's zone, its assigned agents and whether its number is on the
do-not-call list (one probe of that list's unique index per lead): the calling window and who is
signed in are then decided once per group in Python, not once per lead.

That query reads every remaining lead: about 3 s for the 2.8 million of a worked 5-million-lead
campaign (BENCHMARKS.md). So the page counts on the spot only up to :data:`INLINE_MAX` remaining
leads (the counters say how many, ``LeadCount``); above, a worker counts
(``campaigns.services.campaign_breakdown_for_page``, one count at a time per campaign) and the
page shows the last count with its time, asking again until one younger than
:data:`FRESH_SECONDS` is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Exists, Min, OuterRef, Q
from django.utils import timezone

from agentdesk.models import Agent, Presence
from campaigns.models import Campaign, DoNotCall, Lead
from campaigns.selectors import lead_zone_of, window_open_in, window_opens_in

PAUSED = "paused"
DO_NOT_CALL = "do_not_call"
CAPPED = "capped"
LEASED = "leased"
CALLBACK_LATER = "callback_later"
RETRY_LATER = "retry_later"
OUTSIDE_WINDOW = "outside_window"
AGENTS_AWAY = "agents_away"
DIALABLE = "dialable"

# Remaining leads up to which the page counts them itself (a few hundred ms at most).
INLINE_MAX = 200_000
# A worker's count younger than this is shown as it is; an older one is shown while it counts again.
FRESH_SECONDS = 30
# How long a count in progress keeps others from starting one (a killed worker's lock expires).
COUNTING_SECONDS = 300

LABELS = {
    PAUSED: "Campaign paused",
    DO_NOT_CALL: "On the do-not-call list",
    CAPPED: "Attempts used up",
    LEASED: "Previewed on a desk",
    CALLBACK_LATER: "Callback not due yet",
    RETRY_LATER: "Retry delay not over",
    OUTSIDE_WINDOW: "Outside the calling window",
    AGENTS_AWAY: "Assigned to agents not signed in",
    DIALABLE: "Dialable now",
}
ORDER = [
    DIALABLE,
    PAUSED,
    DO_NOT_CALL,
    CAPPED,
    LEASED,
    CALLBACK_LATER,
    RETRY_LATER,
    OUTSIDE_WINDOW,
    AGENTS_AWAY,
]


@dataclass(frozen=True)
class Blocker:
    key: str
    label: str
    count: int
    opens_at: datetime | None  # when the next of these leads can be called (None: not by time)
    # The zone of the lead that opens first, where its own clock is what the time means (a
    # calling window, a callback booked at the lead's hour): the page shows it there too.
    zone: str = ""


@dataclass(frozen=True)
class Breakdown:
    remaining: int
    rows: list[Blocker]

    def count(self, key: str) -> int:
        return next((row.count for row in self.rows if row.key == key), 0)


def campaign_breakdown(campaign: Campaign, now: datetime | None = None) -> Breakdown:
    now = now or timezone.now()
    capped = Q(attempts__gte=campaign.attempt_cap)
    leased = ~capped & Q(lease_owner__isnull=False, lease_expires_at__gt=now)
    free = ~capped & ~Q(lease_owner__isnull=False, lease_expires_at__gt=now)
    later = Q(next_attempt_at__gt=now)
    callback_later = free & Q(status=Lead.Status.CALLBACK) & later
    retry_later = free & ~Q(status=Lead.Status.CALLBACK) & later
    ready = free & ~later
    groups = (
        Lead.objects.filter(campaign=campaign, status__in=[Lead.Status.PENDING, Lead.Status.CALLBACK])
        .exclude(source=Lead.Source.PLATFORM)
        .annotate(on_dnc=Exists(DoNotCall.objects.filter(number=OuterRef("number"))))
        .values("timezone", "assigned_agents", "on_dnc")
        .annotate(
            total=Count("id"),
            capped=Count("id", filter=capped),
            leased=Count("id", filter=leased),
            leased_until=Min("lease_expires_at", filter=leased),
            callback_later=Count("id", filter=callback_later),
            callback_at=Min("next_attempt_at", filter=callback_later),
            retry_later=Count("id", filter=retry_later),
            retry_at=Min("next_attempt_at", filter=retry_later),
            ready=Count("id", filter=ready),
        )
        .order_by()
    )
    counts = dict.fromkeys(ORDER, 0)
    opens: dict[str, datetime | None] = dict.fromkeys(ORDER)
    zones: dict[str, str] = dict.fromkeys(ORDER, "")

    def add(key: str, n: int, at: datetime | None = None, zone: str = "") -> None:
        counts[key] += n
        if n and at is not None and (opens[key] is None or at < opens[key]):
            opens[key], zones[key] = at, zone

    signed_in = set(Agent.objects.exclude(presence=Presence.OFFLINE).values_list("user__username", flat=True))
    remaining = 0
    for group in groups:
        remaining += group["total"]
        if campaign.status != Campaign.Status.ACTIVE:
            add(PAUSED, group["total"])
            continue
        if group["on_dnc"]:
            add(DO_NOT_CALL, group["total"])
            continue
        add(CAPPED, group["capped"])
        add(LEASED, group["leased"], group["leased_until"])
        zone = lead_zone_of(group["timezone"])
        add(CALLBACK_LATER, group["callback_later"], group["callback_at"], zone.key)
        add(RETRY_LATER, group["retry_later"], group["retry_at"])
        assigned = {name for name in (group["assigned_agents"] or "").split(",") if name}
        if not window_open_in(campaign, zone, now):
            add(OUTSIDE_WINDOW, group["ready"], window_opens_in(campaign, zone, now), zone.key)
        elif assigned and not assigned & signed_in:
            add(AGENTS_AWAY, group["ready"])
        else:
            add(DIALABLE, group["ready"])
    rows = [Blocker(key, LABELS[key], counts[key], opens[key], zones[key]) for key in ORDER if counts[key]]
    return Breakdown(remaining=remaining, rows=rows)

"""Which lead comes next, and that finding it reads the ready leads only (docs/desk.md, "The
queue"). The order tests run on both databases; the plan test needs PostgreSQL's EXPLAIN."""

from __future__ import annotations

import json
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentdesk import services
from campaigns import selectors as campaign_selectors
from campaigns.models import Lead

# A worked campaign: most leads wait on a retry delay, ahead (lower ids) of the few fresh ones.
WAITING = 6000
FRESH = 200


def _lead(campaign, n: int, **fields) -> Lead:
    return Lead(
        campaign=campaign, number=f"+1212555{n:04d}", name=f"Lead {n}", timezone="America/New_York", **fields
    )


def _next(agent, campaign) -> Lead | None:
    return services.lead_next_for_agent(agent=agent, campaign=campaign)


def test_the_lowest_id_that_may_be_called_now_comes_next(agent, other, campaign):
    now = timezone.now()
    hour = timedelta(hours=1)
    kinds = [
        ("waiting", {"next_attempt_at": now + hour}),
        ("callback later", {"status": Lead.Status.CALLBACK, "next_attempt_at": now + hour}),
        ("done", {"status": Lead.Status.DONE}),
        (
            "capped",
            {"status": Lead.Status.CALLBACK, "attempts": campaign.attempt_cap, "next_attempt_at": now - hour},
        ),
        ("platform", {"source": Lead.Source.PLATFORM}),
        ("for other", {"assigned_agents": ",other,"}),
        ("retry due", {"attempts": 1, "next_attempt_at": now - hour}),
        (
            "callback due",
            {"status": Lead.Status.CALLBACK, "attempts": 1, "next_attempt_at": now - timedelta(minutes=1)},
        ),
        ("fresh", {}),
    ]
    leads = {name: _lead(campaign, n, **fields) for n, (name, fields) in enumerate(kinds)}
    Lead.objects.bulk_create(leads.values())
    by_name = {lead.name: lead.pk for lead in Lead.objects.filter(campaign=campaign)}
    ids = {name: by_name[f"Lead {n}"] for n, (name, _) in enumerate(kinds)}

    # A due retry keeps its place in sheet order, ahead of a fresh lead with a higher id.
    order = []
    while (lead := _next(agent, campaign)) is not None:
        order.append(lead.pk)
        Lead.objects.filter(pk=lead.pk).update(
            status=Lead.Status.DONE, lease_owner=None, lease_expires_at=None
        )
    assert order == [ids["retry due"], ids["callback due"], ids["fresh"]]
    assert _next(other, campaign).pk == ids["for other"]
    # What waits keeps its time; a due lead's was cleared on its way to the ready queue.
    waiting = Lead.objects.get(pk=ids["waiting"])
    assert waiting.next_attempt_at == now + hour


def test_a_skipped_lead_waits_then_comes_back_in_its_place(agent, campaign, leads):
    first = _next(agent, campaign)
    services.lead_skip(agent=agent, lead=first, reason="Bad line")
    assert _next(agent, campaign).pk == leads[1].pk
    Lead.objects.filter(pk=leads[1].pk).update(status=Lead.Status.DONE, lease_owner=None)
    # The retry delay passes: the skipped lead is the lowest id again.
    Lead.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    assert _next(agent, campaign).pk == first.pk


@pytest.mark.django_db(transaction=True)
def test_the_beat_promotes_due_leads(campaign):
    """Outside any transaction, as the beat's task runs it."""
    past, future = timezone.now() - timedelta(minutes=5), timezone.now() + timedelta(minutes=5)
    Lead.objects.bulk_create(
        [_lead(campaign, 1, next_attempt_at=past), _lead(campaign, 2, next_attempt_at=future)]
    )
    assert services.leads_promote_due() == 1
    assert sorted(Lead.objects.values_list("next_attempt_at", flat=True), key=str) == [future, None]


def _walk(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _walk(child)


@pytest.mark.postgres
def test_the_lease_reads_the_ready_leads_only(agent, campaign):
    """Fails if the lease's plan walks the waiting leads again (issue 20: 89,780 rows removed by
    filter for one lease at 100,000 leads, 90% waiting)."""
    if not settings.IS_POSTGRES:
        pytest.skip("EXPLAIN (ANALYZE, FORMAT JSON) is PostgreSQL's (set DATABASE_URL)")
    soon = timezone.now() + timedelta(minutes=30)
    worked = [
        _lead(campaign, n, attempts=1, next_attempt_at=soon)
        if n % 10
        else _lead(campaign, n, status=Lead.Status.DONE, attempts=1)
        for n in range(WAITING)
    ]
    fresh = [_lead(campaign, WAITING + n) for n in range(FRESH)]
    Lead.objects.bulk_create(worked + fresh, batch_size=2000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE campaigns_lead")
        cur.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'lead_ready_idx'::regclass"
        )
        ready_indexes = {"lead_ready_idx", *(name for (name,) in cur.fetchall())}

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        lead = _next(agent, campaign)
        transaction.set_rollback(True)
    assert lead is not None and lead.name == f"Lead {WAITING}"
    (lease_sql,) = [
        q["sql"]
        for q in queries.captured_queries
        # The lease: one UPDATE of the first candidate (FOR UPDATE SKIP LOCKED in its subquery).
        if q["sql"].startswith('UPDATE "campaigns_lead" SET "lease_owner_id"') and "SKIP LOCKED" in q["sql"]
    ]

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {lease_sql}")
        raw = cur.fetchone()[0]
        transaction.set_rollback(True)
    plan = (raw if isinstance(raw, list) else json.loads(raw))[0]["Plan"]
    nodes = list(_walk(plan))
    shown = json.dumps(plan, indent=1)
    assert {n.get("Index Name") for n in nodes} & ready_indexes, f"lead_ready_idx unused:\n{shown}"
    assert not [n for n in nodes if n["Node Type"] in ("Seq Scan", "Sort", "Bitmap Heap Scan")], shown
    # The candidate is picked once (an InitPlan): a semi-join could pick again for each row it
    # joins, each pick skipping the lead the UPDATE just leased, and lease several.
    assert any(n.get("Parent Relationship") == "InitPlan" for n in nodes), shown
    fed = [c for c in plan.get("Plans", []) if c.get("Parent Relationship") != "InitPlan"]
    assert plan["Node Type"] == "ModifyTable", shown
    assert sum(c["Actual Rows"] * c.get("Actual Loops", 1) for c in fed) == 1, shown  # one lead leased
    removed = sum(n.get("Rows Removed by Filter", 0) for n in nodes)
    scanned = sum(n.get("Actual Rows", 0) * n.get("Actual Loops", 1) for n in nodes if "Index Name" in n)
    assert removed < 100 and scanned < 100, f"{removed} rows removed by filter, {scanned} read:\n{shown}"


# -- calling windows by zone: a server in UTC, leads in New York, Sydney and Los Angeles ---------

ZONES = ("America/New_York", "Australia/Sydney", "America/Los_Angeles", "America/New_York")


def _window_around(campaign, zone: str, before: timedelta, after: timedelta) -> None:
    """The campaign's window, set to open ``before`` the present moment in ``zone`` and close
    ``after`` it (a window may cross midnight)."""
    local = timezone.now().astimezone(ZoneInfo(zone))
    campaign.window_start = (local - before).time().replace(second=0, microsecond=0)
    campaign.window_end = (local + after).time().replace(second=0, microsecond=0)
    campaign.window_days = "0123456"
    campaign.save()


def _zoned_leads(campaign) -> list[int]:
    Lead.objects.bulk_create(
        Lead(campaign=campaign, number=f"+1212555{n:04d}", name=f"{zone} {n}", timezone=zone)
        for n, zone in enumerate(ZONES)
    )
    return list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True))


def _take_all(agent, campaign) -> list[int]:
    taken = []
    while (lead := _next(agent, campaign)) is not None:
        taken.append(lead.pk)
        Lead.objects.filter(pk=lead.pk).update(
            status=Lead.Status.DONE, lease_owner=None, lease_expires_at=None
        )
    return taken


def test_only_leads_inside_their_calling_window_are_offered(agent, campaign):
    # Open for an hour around now in Los Angeles: New York (3 h ahead) and Sydney (17-19 h
    # ahead) are outside it, though their leads have the lower ids.
    _window_around(campaign, "America/Los_Angeles", timedelta(minutes=30), timedelta(minutes=30))
    ny, sydney, la, ny2 = _zoned_leads(campaign)
    assert _take_all(agent, campaign) == [la]
    assert set(Lead.objects.filter(status=Lead.Status.PENDING).values_list("id", flat=True)) == {
        ny,
        sydney,
        ny2,
    }


def test_open_zones_are_taken_together_in_id_order(agent, campaign):
    # Open from half an hour ago in Los Angeles to half an hour ahead in New York: both coasts.
    _window_around(campaign, "America/Los_Angeles", timedelta(minutes=30), timedelta(hours=3, minutes=30))
    ny, _sydney, la, ny2 = _zoned_leads(campaign)
    assert _take_all(agent, campaign) == [ny, la, ny2]


def test_a_due_callback_waits_for_its_window_too(agent, campaign):
    _window_around(campaign, "America/Los_Angeles", timedelta(minutes=30), timedelta(minutes=30))
    ny, _sydney, la, _ny2 = _zoned_leads(campaign)
    Lead.objects.filter(pk__in=[ny, la]).update(status=Lead.Status.CALLBACK, attempts=1)
    lead = services.callback_next_for_agent(agent=agent, campaign=campaign)
    assert lead is not None and lead.pk == la
    Lead.objects.filter(pk=la).update(status=Lead.Status.DONE, lease_owner=None, lease_expires_at=None)
    assert services.callback_next_for_agent(agent=agent, campaign=campaign) is None


def test_with_every_window_closed_the_desk_says_when_the_next_opens(agent, campaign):
    # A window that opened and closed in Los Angeles in the last hours: closed everywhere now
    # (Sydney's 17-19 h ahead lands 5-7 h behind Los Angeles on the clock).
    local = timezone.now().astimezone(ZoneInfo("America/Los_Angeles"))
    campaign.window_start = (local - timedelta(hours=2)).time().replace(second=0, microsecond=0)
    campaign.window_end = (local - timedelta(hours=1)).time().replace(second=0, microsecond=0)
    campaign.save()
    _zoned_leads(campaign)
    assert _next(agent, campaign) is None
    opens = campaign_selectors.next_window_opening(campaign, timezone.now())
    # The start is 2 h behind Los Angeles' clock: Sydney's clock (5-7 h behind it, a day on)
    # reaches it in 3-5 h, New York's (3 h ahead) in 19 h, Los Angeles' own in 22 h.
    assert opens.tzinfo.key == "Australia/Sydney"
    assert opens.time() == campaign.window_start
    assert timedelta(hours=2, minutes=59) < opens - timezone.now() < timedelta(hours=5, minutes=1)

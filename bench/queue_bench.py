"""Next-lead benchmark: the lease under a floor of agents, on a worked million-lead campaign.

    python bench/queue_bench.py [--leads 1000000] [--agents 100] [--rounds 20] [--json out.json]
        [--database-url postgres://...] [--redis-url redis://...]

Builds one campaign of ``--leads`` leads as its own partition (as a big sheet's import does,
``campaigns.partitions``) in the mix of a campaign worked for hours in sheet order: the first
90% of the ids called once or more (done, exhausted, do-not-call, waiting on a retry delay,
callbacks booked for later, a few callbacks due, a few callbacks booked on the last attempt and
so capped, some leads assigned to one agent), the last 10% fresh; half the leads in New York,
three tenths in Los Angeles, a fifth in Sydney, whose calling window is closed during the run.
Every run rebuilds it.

Then ``--agents`` threads, each with its own database connection, start together (the first
ask is a burst: every agent at once) and each leases ``--rounds`` leads through
``agentdesk.services.lead_next_for_agent``, finishes each (status done, lease cleared) and
spends ``--think`` seconds (0.5-1.5x, random) on it before asking again. ``--think 0`` asks
back to back: on 2 cores that measures the queue of 100 Python threads behind one GIL, not the
lease (about 1 s a lease with either query, BENCHMARKS.md). Reported: p50/p99/max per
lease, and **double leases** (a lead leased to two agents; must be 0). Baseline, measured by the
same threads right before and after: a plain indexed ``SELECT id ... ORDER BY id LIMIT 1`` on the
same table. Prints a table and, on the last line, the figures as JSON. Timings are for reading,
never asserted; figures are recorded in BENCHMARKS.md ("Next lead under load").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import threading
import time
from collections import Counter
from pathlib import Path

from benchdb import django_on

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agentdesk_queue_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
PREFIX = "queuebench"
CAMPAIGN = f"{PREFIX} campaign"

# The worked mix, by share of the first 90% of ids (the part already called). In SQL over
# h = a hash of the id in 0..999, so each kind is spread over the whole worked range.
WORKED_SHARE = 0.9
MIX_SQL = """
CASE
  WHEN h < 400 THEN 'done'                 -- 40.0 pct finished
  WHEN h < 480 THEN 'exhausted'            --  8.0 pct attempts used up
  WHEN h < 490 THEN 'dnc'                  --  1.0 pct do not call
  WHEN h < 890 THEN 'retry'                -- 40.0 pct waiting on a retry delay (1-120 min)
  WHEN h < 940 THEN 'callback_later'       --  5.0 pct callbacks booked for later today
  WHEN h < 950 THEN 'callback_due'         --  1.0 pct callbacks whose time has come
  WHEN h < 953 THEN 'capped'               --  0.3 pct callback booked on the last attempt (due)
  ELSE 'assigned_retry'                    --  4.7 pct assigned to one agent, waiting on a retry
END
"""


# -- statistics and output -------------------------------------------------------------------------


def ms_stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))] * 1000, 2)

    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": pct(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


# -- database ----------------------------------------------------------------------------------------


def seed(leads: int, agents: int):
    """The campaign (its partition rebuilt) and the agents."""
    from datetime import time as dtime
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from agentdesk.models import Agent
    from calls.models import TelephonyAccount
    from campaigns import partitions
    from campaigns.models import Campaign

    account, _ = TelephonyAccount.objects.get_or_create(
        name=f"{PREFIX} account", defaults={"platform": "ryng", "base_url": "http://127.0.0.1:9/rest-api/v1"}
    )
    campaign, _ = Campaign.objects.get_or_create(
        name=CAMPAIGN,
        defaults={"account": account, "attempt_cap": 3, "window_start": dtime(0), "window_end": dtime.max},
    )
    # A floor in UTC calling two coasts while Sydney sleeps: the window is open in New York and
    # Los Angeles (from 2 h ago on the west coast to 2 h ahead on the east coast) and closed in
    # Sydney, whose leads (a fifth) the lease passes over by zone (docs/desk.md, "The queue").
    now = timezone.now()
    campaign.window_start = (now.astimezone(ZoneInfo("America/Los_Angeles")) - timedelta(hours=2)).time()
    campaign.window_end = (now.astimezone(ZoneInfo("America/New_York")) + timedelta(hours=2)).time()
    campaign.window_days = "0123456"
    campaign.save(update_fields=["window_start", "window_end", "window_days"])
    users = get_user_model().objects
    team = []
    for n in range(agents):
        user, _ = users.get_or_create(username=f"{PREFIX}{n}")
        agent, _ = Agent.objects.get_or_create(user=user)
        team.append(agent)
    table = partitions.table_for(campaign.pk)
    print(f"Building {leads:,} leads in the worked mix as {table} ...", flush=True)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute("DELETE FROM campaigns_lead WHERE campaign_id = %s", [campaign.pk])
        partitions.create_table(cur, table, campaign.pk)
        worked = int(leads * WORKED_SHARE)
        assignee = f",{PREFIX}7,"
        cur.execute(
            f"""
            INSERT INTO {table} (id, campaign_id, number, raw_number, name, custom_fields, assigned_agents,
                timezone, status, source, attempts, next_attempt_at, last_disposition, last_notes, offer,
                created_at, last_called_at)
            SELECT nextval(pg_get_serial_sequence('campaigns_lead', 'id')), %(campaign)s,
                '+1212' || lpad(i::text, 7, '0'), '+1212' || lpad(i::text, 7, '0'), 'Lead ' || i,
                '{{"City": "Springfield"}}', CASE WHEN kind = 'assigned_retry' THEN %(assignee)s ELSE '' END,
                CASE WHEN i %% 10 < 5 THEN 'America/New_York' WHEN i %% 10 < 8 THEN 'America/Los_Angeles'
                     ELSE 'Australia/Sydney' END,
                CASE kind WHEN 'fresh' THEN 'pending' WHEN 'retry' THEN 'pending' WHEN 'assigned_retry' THEN 'pending'
                    WHEN 'callback_later' THEN 'callback' WHEN 'callback_due' THEN 'callback'
                    WHEN 'capped' THEN 'callback' ELSE kind END,
                'sheet',
                CASE kind WHEN 'fresh' THEN 0 WHEN 'capped' THEN 3 WHEN 'exhausted' THEN 3 ELSE 1 + h %% 2 END,
                CASE WHEN kind IN ('retry', 'assigned_retry', 'callback_later')
                         THEN now() + make_interval(mins => 1 + h %% 120)
                     WHEN kind IN ('callback_due', 'capped') THEN now() - make_interval(mins => 1 + h %% 30)
                END,
                '', '', '{{}}', now(), CASE WHEN kind = 'fresh' THEN NULL ELSE now() END
            FROM (
                SELECT i, h, CASE WHEN i >= %(worked)s THEN 'fresh' ELSE {MIX_SQL} END AS kind
                FROM (SELECT i, (hashint4(i) & 2147483647) %% 1000 AS h FROM generate_series(0, %(n)s - 1) i) g
            ) m
            ORDER BY i
            """,
            {"campaign": campaign.pk, "assignee": assignee, "worked": worked, "n": leads},
        )
        partitions._create_indexes(cur, table, None)
        partitions._attach(cur, table, campaign.pk)
    with connection.cursor() as cur:
        cur.execute(
            "SELECT status, (next_attempt_at > now()) AS waiting, count(*) FROM campaigns_lead"
            " WHERE campaign_id = %s GROUP BY 1, 2 ORDER BY 1, 2",
            [campaign.pk],
        )
        mix = {f"{status}{' waiting' if waiting else ''}": n for status, waiting, n in cur.fetchall()}
    print(f"  {time.perf_counter() - started:.1f} s; mix: {mix}", flush=True)
    return campaign, team, mix


def settle(url: str) -> None:
    import psycopg

    print("Settling the database (VACUUM (ANALYZE) campaigns_lead, CHECKPOINT) ...", flush=True)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE) campaigns_lead")
        conn.execute("CHECKPOINT")


# -- the floor of agents -------------------------------------------------------------------------------


def together(agents: list, work) -> tuple[list[float], list[BaseException]]:
    """Run ``work(agent, index)`` in one thread per agent, started together; each returns a list
    of per-request seconds. Each thread has its own connection (closed at the end)."""
    from django.db import connection

    barrier = threading.Barrier(len(agents))
    samples: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(agent, index):
        try:
            barrier.wait(timeout=60)
            mine = work(agent, index)
            with lock:
                samples.extend(mine)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(agent, n)) for n, agent in enumerate(agents)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return samples, errors


def pause(seconds: float) -> None:
    """An agent's time with a lead between two asks (uniform around ``seconds``)."""
    if seconds:
        time.sleep(random.uniform(0.5, 1.5) * seconds)


def floor_work(campaign, rounds: int, think: float):
    from django.db import connection

    def work(_agent, index):
        took = []
        with connection.cursor() as cur:
            for r in range(rounds):
                started = time.perf_counter()
                cur.execute(
                    "SELECT id FROM campaigns_lead WHERE campaign_id = %s AND id > %s ORDER BY id LIMIT 1",
                    [campaign.pk, (index * rounds + r) * 97],
                )
                cur.fetchone()
                took.append(time.perf_counter() - started)
                pause(think)
        return took

    return work


def lease_work(campaign, rounds: int, think: float, leased: list[tuple[int, int]], lock: threading.Lock):
    from agentdesk.services import lead_next_for_agent
    from campaigns.models import Lead

    def work(agent, _index):
        took = []
        for _ in range(rounds):
            started = time.perf_counter()
            lead = lead_next_for_agent(agent=agent, campaign=campaign)
            took.append(time.perf_counter() - started)
            if lead is None:
                continue
            with lock:
                leased.append((lead.pk, agent.pk))
            # The agent is done with it (a final disposition), so the next ask leases a new lead.
            Lead.objects.filter(pk=lead.pk).update(
                status=Lead.Status.DONE, lease_owner=None, lease_expires_at=None
            )
            pause(think)
        return took

    return work


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=20, help="leases per agent")
    parser.add_argument(
        "--think",
        type=float,
        default=3.0,
        help="seconds an agent spends on a lead before asking again (mean; 0: ask back to back)",
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    django_on(args.database_url, args.redis_url, PREFIX)
    from django.db import connection

    campaign, team, mix = seed(args.leads, args.agents)
    from agentdesk import services

    if hasattr(services, "leads_promote_due"):
        # What the beat does every 30 s: the leads already due join the ready queue before the
        # floor starts, as they would have one by one while the campaign was worked.
        started = time.perf_counter()
        promoted = services.leads_promote_due()
        print(
            f"  the beat's promotion: {promoted:,} due leads in {time.perf_counter() - started:.2f} s",
            flush=True,
        )
    connection.close()
    settle(args.database_url)

    leased: list[tuple[int, int]] = []
    lock = threading.Lock()
    print(f"{args.agents} agents, {args.rounds} leases each, all at once ...", flush=True)
    floor_before, errors = together(team, floor_work(campaign, args.rounds, args.think))
    lease_samples, lease_errors = together(team, lease_work(campaign, args.rounds, args.think, leased, lock))
    floor_after, more = together(team, floor_work(campaign, args.rounds, args.think))
    errors += lease_errors + more
    if errors:
        raise SystemExit(f"{len(errors)} errors, the first: {errors[0]!r}")
    doubles = sum(n - 1 for n in Counter(pk for pk, _ in leased).values() if n > 1)
    from campaigns.models import Lead

    # Sydney's window is closed for the whole run: a lease of one of its leads is a lead the dial
    # would refuse (must be 0).
    outside = Lead.objects.filter(pk__in=[pk for pk, _ in leased], timezone="Australia/Sydney").count()
    lease, floor = ms_stats(lease_samples), ms_stats(floor_before + floor_after)
    result = {
        "benchmark": "next lead under load",
        "leads": args.leads,
        "agents": args.agents,
        "rounds": args.rounds,
        "think_seconds": args.think,
        "mix": mix,
        "lease": lease,
        "leases_granted": len(leased),
        "double_leases": doubles,
        "leases_outside_window": outside,
        "baseline": {"what": "indexed SELECT id ... ORDER BY id LIMIT 1, same threads", **floor},
        "ratio_p50": round(lease["p50_ms"] / floor["p50_ms"], 1) if floor["p50_ms"] else None,
        "ratio_p99": round(lease["p99_ms"] / floor["p99_ms"], 1) if floor["p99_ms"] else None,
        "target": "p99 < 30 ms, 0 double leases, 0 leases outside the calling window",
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    head = f"{'figure':<40} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    print(head)
    print("-" * len(head))
    print(
        f"{'lease (lead_next_for_agent)':<40} {lease['p50_ms']:>8} {lease['p99_ms']:>8} {lease['max_ms']:>8}"
    )
    print(
        f"{'baseline (indexed SELECT ... LIMIT 1)':<40} {floor['p50_ms']:>8} {floor['p99_ms']:>8} {floor['max_ms']:>8}"
    )
    print(
        f"ratio p50 {result['ratio_p50']}x, p99 {result['ratio_p99']}x; {len(leased)} leases, {doubles} double,"
        f" {outside} outside the calling window"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

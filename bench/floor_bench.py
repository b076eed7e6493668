"""Supervisor floor benchmark: the pages a supervisor keeps open, on a campaign of 5 million leads.

    python bench/floor_bench.py [--leads 5000000] [--runs 10] [--rebuild] [--json out.json]
        [--database-url postgres://...] [--redis-url redis://...]

Builds (once; kept for the next run unless ``--rebuild`` or another size) one campaign of
``--leads`` leads in the worked mix of ``bench/queue_bench.py`` (done, exhausted, do-not-call,
waiting on retries, callbacks, capped, assigned, fresh; three zones, Sydney's window closed) as
its own partition, then asks, as a signed-in supervisor through Django's test client (the view,
its queries and its template, no network), ``--runs`` times each after one warm-up:

* the campaigns page (``/supervisor/``), whose lead counts come from the counters
  (``campaigns.models.LeadCount``);
* the campaign's page, the wallboard's first paint and the agents board;
* the "why nothing is dialable" breakdown of the campaign (``campaigns.blockers``): the page's
  fragment, and the count a worker makes for it (above ``INLINE_MAX`` remaining leads the page
  shows the worker's last count and asks for a new one when it is older than 30 s).

Baseline, in the same run: a plain indexed count, ``SELECT count(*)`` of the campaign's waiting
leads (an index-only scan of ``lead_queue_idx``), and for reference the scan of every lead by
status that the campaigns page did before the counters. Ratios are page over baseline. Target
(issue 17): every supervisor page well under a second at 5 million leads. Figures go to
``bench/results.json`` and BENCHMARKS.md ("The supervisor's floor at 5 million leads").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from benchdb import django_on
from queue_bench import CAMPAIGN, seed, settle
from results import record, table

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agentdesk_floor_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
PREFIX = "floorbench"
TARGET_MS = 1000


def timed(runs: int, ask) -> dict[str, float]:
    ask()  # warm-up: caches, plans, the template loader
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        ask()
        samples.append((time.perf_counter() - started) * 1000)
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 1), "max_ms": round(ordered[-1], 1), "n": runs}


def built(leads: int):
    """The campaign kept from an earlier run, if it has exactly ``leads`` leads."""
    from campaigns.models import Campaign
    from campaigns.selectors import campaign_counts

    campaign = Campaign.objects.filter(name=CAMPAIGN).first()
    if campaign is not None and campaign_counts(campaign)["total"] == leads:
        return campaign
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--leads", type=int, default=5_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true", help="build the campaign even if kept")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    parser.add_argument("--no-record", action="store_true", help="leave bench/results.json alone")
    args = parser.parse_args()
    django_on(args.database_url, args.redis_url, PREFIX)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.test import Client

    from agentdesk.roles import SUPERVISORS_GROUP

    settings.ALLOWED_HOSTS = ["*"]
    campaign = None if args.rebuild else built(args.leads)
    if campaign is None:
        campaign, _team, mix = seed(args.leads, 20)
        settle(args.database_url)
    else:
        print(f"Keeping the {args.leads:,}-lead campaign of an earlier run (--rebuild builds it again).")
        mix = None
    user, _ = get_user_model().objects.get_or_create(username=f"{PREFIX}-supervisor")
    user.groups.add(Group.objects.get_or_create(name=SUPERVISORS_GROUP)[0])
    client = Client()
    client.force_login(user)

    def page(path: str):
        def ask():
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code)

        return ask

    def sql(statement: str):
        def ask():
            with connection.cursor() as cur:
                cur.execute(statement, [campaign.pk])
                cur.fetchall()

        return ask

    print(f"Asking each page {args.runs} times ...", flush=True)
    baseline = timed(
        args.runs, sql("SELECT count(*) FROM campaigns_lead WHERE campaign_id = %s AND status = 'pending'")
    )
    scan = timed(
        args.runs, sql("SELECT status, count(*) FROM campaigns_lead WHERE campaign_id = %s GROUP BY status")
    )
    pages = {
        "campaigns page": page("/supervisor/"),
        "campaign page": page(f"/supervisor/campaigns/{campaign.pk}/"),
        "wallboard first paint": page("/supervisor/wallboard/"),
        "agents board": page("/supervisor/agents/"),
        "why not dialable (breakdown)": page(f"/supervisor/campaigns/{campaign.pk}/breakdown/"),
    }
    from campaigns import services

    # The worker's count for the breakdown (what the page shows above INLINE_MAX remaining
    # leads): timed as the worker runs it, and so the page finds it done.
    counted = timed(
        max(3, args.runs // 3), lambda: services.campaign_breakdown_count_run(campaign_id=campaign.pk)
    )
    measured = {name: timed(args.runs, ask) for name, ask in pages.items()}
    measured["why not dialable, the worker's count"] = counted
    base = f"{baseline['p50_ms']} ms p50 (indexed count of waiting leads)"
    command = f"make bench (bench/floor_bench.py --leads {args.leads})"
    figures = [
        {
            "figure": f"{name}, {args.leads / 1e6:g}M leads",
            # The worker's count runs in the background: the page never waits for it.
            "target": None if "worker" in name else f"< {TARGET_MS} ms",
            "now": f"{m['p50_ms']} ms p50, {m['max_ms']} ms max",
            "baseline": base,
            "ratio": round(m["p50_ms"] / baseline["p50_ms"], 2) if baseline["p50_ms"] else None,
            "met": None if "worker" in name else m["max_ms"] < TARGET_MS,
            "command": command,
        }
        for name, m in measured.items()
    ]
    figures.append(
        {
            "figure": f"counts by scanning every lead (the campaigns page before), {args.leads / 1e6:g}M leads",
            "target": None,
            "now": f"{scan['p50_ms']} ms p50, {scan['max_ms']} ms max",
            "baseline": base,
            "ratio": round(scan["p50_ms"] / baseline["p50_ms"], 2) if baseline["p50_ms"] else None,
            "met": None,
            "command": command,
        }
    )
    print(table(figures))
    if not args.no_record:
        record(figures)
    result = {"benchmark": "supervisor floor", "leads": args.leads, "mix": mix, "figures": figures}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

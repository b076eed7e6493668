"""Load benchmarks: the floor's paths under many desks, agents and platform signals at once, each
against a floor measured in the same run (issue 20, items 2, 3, 4, 5 and 7).

    python bench/load_bench.py callbacks|events|desks|dial|scaleout|all [--tiny] [--json out.json]
        [--database-url postgres://...] [--redis-url redis://...]

Real processes on PostgreSQL and Redis (bench/loadkit.py): the emulators, daphne serving
``agentdesk.asgi:application`` and Celery ``dial,default`` workers. Sizes come from the
environment (defaults fit ``make bench`` in its 15 minutes on a 2-core machine; scale up with
e.g. ``BENCH_DESKS=500 BENCH_EVENT_RATE=200``); ``--tiny`` is the smoke test's size.

- ``callbacks`` (item 3): ``BENCH_CB_CLIENTS`` (32) keep-alive HTTP clients post Ryng callbacks
  for existing calls (each call's three in order: agent-connected, customer-connected,
  call-ended; every 10th sent twice, as Ryng retries) for ``BENCH_CB_SECONDS`` (6). Then the
  database must hold each callback answered 200 exactly once, applied, and no retry applied: a
  loss or a double fails the run (exit 1). A callback answered 500 is counted as refused (Ryng
  would send it again a minute later) and misses the target, without failing the run. Baseline: the same clients on a bare Django view
  (``/favicon.ico``, the whole middleware stack, no database), half before, half after.
- ``events`` (item 2): ``BENCH_DESKS`` (100; the target's 500 with ``BENCH_DESKS=500``) desks
  connected, Ryng callbacks at ``BENCH_EVENT_RATE`` (200) per second for
  ``BENCH_EVENT_SECONDS`` (3) spread over them;
  p50/p99 from the callback POST leaving the client to the desk's frame showing the new state.
  Baseline: a bare Redis PUBLISH to a subscriber, the same rate and size, in the same run.
- ``desks`` (item 4): desks connected ``BENCH_DESK_STEP`` (100) at a time up to
  ``BENCH_DESKS_MAX`` (400; the target's 2,000 with ``BENCH_DESKS_MAX=2000``); at each step
  ``BENCH_PROBE_RATE`` (10) pushes a second for 3 s to random desks (the consumer renders the
  call, presence and day panels from the database). Pushes are on time while their p99 stays
  under ``BENCH_LATE_MS`` (250); the climb goes on past that (daphne's memory per desk is the
  other half of the figure) and stops at twice it, at a lost push or a dropped desk. Reports
  the most desks held on time and daphne's RSS at each step; baseline its RSS with no desk.
- ``dial`` (item 5): ``BENCH_DIAL_AGENTS`` (100) agents, each with a desk, click Dial within
  ``BENCH_DIAL_SPREAD`` (1.0) seconds, ``BENCH_DIAL_ROUNDS`` (1) times after a warm-up round; p99 of the Dial
  request to its HTTP answer and to the emulator receiving Make Preview Call. Baselines: the
  bare view, and a no-op Celery task (``.delay()`` to its marker), at the same burst.
- ``scaleout`` (item 7): the callbacks bench on one daphne + one worker, then on two of each
  (clients split over both web processes): what the second process buys.

Prints the table (figure, target, now, baseline, ratio, met) and adds the figures to
``bench/results.json``; the last line of stdout is the run's JSON. Timings are for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import sys
import time
import uuid
from pathlib import Path

import loadkit as kit
import results

COMMANDS = ("callbacks", "events", "desks", "dial", "scaleout")
TINY = {
    "BENCH_CB_CLIENTS": "4",
    "BENCH_CB_SECONDS": "2",
    "BENCH_DESKS": "6",
    "BENCH_EVENT_RATE": "10",
    "BENCH_EVENT_SECONDS": "2",
    "BENCH_DESK_STEP": "3",
    "BENCH_DESKS_MAX": "6",
    "BENCH_DIAL_AGENTS": "4",
    "BENCH_DIAL_ROUNDS": "1",
}


def command(name: str) -> str:
    return f"python bench/load_bench.py {name}"


def latency_figure(
    figure: str,
    target: str,
    limit_ms: float,
    now: dict,
    floor_name: str,
    floor: dict,
    *,
    ok: bool,
    full_size: bool,
    command_name: str,
    detail: dict,
) -> dict:
    """A p50/p99 figure next to its floor's: the ratio is p99 over p99; met when ``ok`` (nothing
    lost or refused), run at the target's size, and the p99 under ``limit_ms``."""
    return {
        "figure": figure,
        "target": target,
        "now": f"p50 {now['p50_ms']} ms, p99 {now['p99_ms']} ms",
        "baseline": f"{floor_name} p50 {floor['p50_ms']} ms, p99 {floor['p99_ms']} ms",
        "ratio": round(now["p99_ms"] / floor["p99_ms"], 1) if now["n"] and floor["p99_ms"] else None,
        "met": bool(ok and full_size and now["n"] and now["p99_ms"] < limit_ms),
        "command": command(command_name),
        "detail": detail,
    }


# -- item 3: callback intake ---------------------------------------------------------------------


async def _bare_view(urls: list[str], clients: int, seconds: float) -> tuple[int, float]:
    """Requests answered by ``/favicon.ico`` (a redirect through every middleware) in ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal done
        http = kit.HTTP(urls[n % len(urls)])
        while time.perf_counter() < stop:
            status, _ = await http.request("GET", "/favicon.ico")
            if status != 302:
                raise RuntimeError(f"/favicon.ico answered {status}")
            done += 1
        http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return done, time.perf_counter() - started


async def _callbacks(urls: list[str], secret: str, calls: list, clients: int, seconds: float) -> dict:
    sent: list[str] = []  # keys of the deliveries answered 200 (first time)
    undelivered: list[str] = []  # refused three times
    retries = 0
    retries_applied, errors, latencies = 0, [], []
    queue = list(reversed(calls))
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal retries_applied, retries
        http = kit.HTTP(urls[n % len(urls)])
        count = 0
        while queue and time.perf_counter() < stop:
            call = queue.pop()
            for event, kind, _state in kit.CALLBACK_STEPS:
                body = kit.callback_body(call.platform_call_id, event)
                path = f"/calls/hooks/ryng/{secret}/{kind}"
                # Ryng sends a callback again when it was not answered 200 (up to twice more);
                # every 10th is also sent again after its 200, as a duplicate delivery.
                delivered, tries = False, 0
                while tries < 3 and not delivered:
                    tries += 1
                    began = time.perf_counter()
                    status, answer = await http.request(
                        "POST", path, body, {"Content-Type": "application/json"}
                    )
                    if status != 200:
                        errors.append(f"{status} {answer[:100]!r}")
                        await asyncio.sleep(0.2)
                        continue
                    delivered = True
                    latencies.append(time.perf_counter() - began)
                    sent.append(f"ryng:{call.platform_call_id}:{event}")
                if delivered and count % 10 == 0:
                    retries += 1
                    status, answer = await http.request(
                        "POST", path, body, {"Content-Type": "application/json"}
                    )
                    if status == 200 and answer != b"ok (nothing to apply)":
                        retries_applied += 1
                    elif status != 200:
                        errors.append(f"{status} {answer[:100]!r}")
                if not delivered:
                    undelivered.append(f"ryng:{call.platform_call_id}:{event}")
                    break  # the call's later callbacks would not apply in order either
                count += 1
        http.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "keys": sent,
        "elapsed": elapsed,
        "retries_applied": retries_applied,
        "retries": retries,
        "undelivered": undelivered,
        "errors": errors,
        "latency": kit.ms(latencies),
    }


def check_callbacks(floor: kit.Floor, keys: list[str]) -> dict:
    """From the database: each callback answered is one event, applied; a call whose three were
    all sent ended."""
    from calls.models import CallEvent

    rows = CallEvent.objects.filter(account=floor.account, key__in=keys).values_list("key", "applied")
    stored: dict[str, list[bool]] = {}
    for key, applied in rows:
        stored.setdefault(key, []).append(applied)
    lost = [k for k in keys if k not in stored]
    not_applied = [k for k, a in stored.items() if not all(a)]
    doubled = [k for k, a in stored.items() if len(a) > 1]
    return {
        "lost": len(lost),
        "not_applied": len(not_applied),
        "doubled": len(doubled),
        "stored": len(stored),
    }


def run_callbacks(env: dict, *, webs: int = 1, workers: int = 1, label: str = "") -> dict:
    clients = kit.env_int("BENCH_CB_CLIENTS", 32)
    seconds = kit.env_float("BENCH_CB_SECONDS", 6)
    with kit.Stack(env, webs=webs, workers=workers) as stack:
        # Enough calls for ~2,000 callbacks a second for the whole run.
        floor = kit.Floor(50, stack.emulator_url)
        calls = floor.new_calls(per_agent=max(1, math.ceil(700 * seconds / 50)))
        asyncio.run(_bare_view(stack.web_urls, clients, 1))  # warm every process
        print(f"  {label}bare view then callbacks, {clients} clients, {seconds:g} s each ...", flush=True)
        cpu0 = stack.cpu_seconds()
        bare1 = asyncio.run(_bare_view(stack.web_urls, clients, seconds / 2))
        cpu1 = stack.cpu_seconds()
        got = asyncio.run(_callbacks(stack.web_urls, floor.account.webhook_secret, calls, clients, seconds))
        cpu2 = stack.cpu_seconds()
        bare2 = asyncio.run(_bare_view(stack.web_urls, clients, seconds / 2))
        cpu3 = stack.cpu_seconds()
    check = check_callbacks(floor, got["keys"])
    rate = len(got["keys"]) / got["elapsed"]
    bare = (bare1[0] + bare2[0]) / (bare1[1] + bare2[1])
    requests = len(got["keys"]) + got["retries"] + len(got["errors"])
    return {
        # daphne's CPU per request: what one process can take at most, whatever the machine does.
        "web_cpu_ms_per_callback": round((cpu2 - cpu1) * 1000 / requests, 2) if requests else None,
        "web_cpu_ms_per_bare_view": round((cpu1 - cpu0 + cpu3 - cpu2) * 1000 / (bare1[0] + bare2[0]), 2),
        "callbacks": len(got["keys"]),
        "per_second": round(rate, 1),
        "bare_per_second": round(bare, 1),
        "latency": got["latency"],
        "retries_applied": got["retries_applied"],
        "errors": got["errors"][:5],
        "error_count": len(got["errors"]),
        "undelivered": len(got["undelivered"]),
        **check,
        "clients": clients,
        "seconds": seconds,
        "webs": webs,
        "workers": workers,
    }


def callbacks_exact(r: dict) -> bool:
    """Every callback answered 200 stored once and applied; no retry applied again."""
    return not (r["lost"] or r["not_applied"] or r["doubled"] or r["retries_applied"])


def callbacks_ok(r: dict) -> bool:
    """Exact, and none refused (a 500 is sent again by Ryng only a minute later)."""
    return callbacks_exact(r) and not r["error_count"] and not r["undelivered"]


def bench_callbacks(env: dict) -> list[dict]:
    r = run_callbacks(env)
    print(
        f"  {r['callbacks']} callbacks in {r['seconds']:g} s: {r['per_second']}/s (bare view {r['bare_per_second']}/s); "
        f"lost {r['lost']}, not applied {r['not_applied']}, doubled {r['doubled']}, "
        f"retries applied {r['retries_applied']}, answered 500 {r['error_count']} times "
        f"({r['undelivered']} never delivered in 3 tries) {r['errors'][:1]}",
        flush=True,
    )
    return [
        {
            "figure": "callback intake (Ryng callbacks/s, none lost or doubled)",
            "target": ">= 1,500/s",
            "now": f"{r['per_second']:,.0f}/s (daphne CPU {r['web_cpu_ms_per_callback']} ms each)",
            "baseline": f"bare view {r['bare_per_second']:,.0f}/s (CPU {r['web_cpu_ms_per_bare_view']} ms each)",
            "ratio": round(r["bare_per_second"] / r["per_second"], 2) if r["per_second"] else None,
            "met": r["per_second"] >= 1500 and callbacks_ok(r),
            "command": command("callbacks"),
            "detail": r,
        }
    ]


# -- item 2: event to screen under load --------------------------------------------------------------


async def _redis_floor(redis_url: str, rate: float, count: int, size: int) -> list[float]:
    """A bare PUBLISH to a subscriber on another connection, paced like the events."""
    import redis.asyncio as aioredis

    pub, sub = aioredis.Redis.from_url(redis_url), aioredis.Redis.from_url(redis_url)
    channel = f"{kit.PREFIX}:floor:{uuid.uuid4().hex}"
    pubsub = sub.pubsub()
    await pubsub.subscribe(channel)
    await pubsub.get_message(timeout=1)  # the subscribe confirmation
    sent: dict[bytes, float] = {}
    took: list[float] = []

    async def listen() -> None:
        while len(took) < count:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
            if message is None:
                break
            took.append(time.perf_counter() - sent[message["data"][:32]])

    listener = asyncio.ensure_future(listen())

    async def one(i: int) -> None:
        token = uuid.uuid4().hex.encode()
        sent[token] = time.perf_counter()
        await pub.publish(channel, token + b"x" * (size - 32))

    await kit.paced(rate, count, one)
    await asyncio.wait_for(listener, 30)
    await pubsub.aclose()
    await pub.aclose()
    await sub.aclose()
    return took


async def _events(stack: kit.Stack, floor: kit.Floor, desks_n: int, rate: float, count: int) -> dict:
    pending: dict[tuple[int, str], float] = {}
    took: list[float] = []
    sizes: list[int] = []
    order = [state for _event, _kind, state in kit.CALLBACK_STEPS]

    def on_frame(desk, text, at) -> None:
        # The consumer renders the committed state when it delivers: a frame showing a later
        # step also shows an earlier one's effect (the first frame to show it is its screen time).
        found = kit.STATE_RE.search(text)
        if found and found.group(1) in order:
            for state in order[: order.index(found.group(1)) + 1]:
                began = pending.pop((desk.index, state), None)
                if began is not None:
                    took.append(at - began)
                    sizes.append(len(text))

    desks = await kit.open_desks(floor, stack.web_urls, on_frame, count=desks_n)
    connections: asyncio.Queue = asyncio.Queue()
    for n in range(64):
        connections.put_nowait(kit.HTTP(stack.web_urls[n % len(stack.web_urls)]))
    secret = floor.account.webhook_secret
    rounds = math.ceil(count / (3 * desks_n))
    http_took: list[float] = []
    statuses: dict[int, int] = {}
    missing = 0
    for r in range(rounds):
        calls = await asyncio.to_thread(floor.new_calls)
        batch = min(count - r * 3 * desks_n, 3 * desks_n)

        async def one(i: int, calls=calls) -> None:
            desk, step = i % desks_n, i // desks_n
            event, kind, state = kit.CALLBACK_STEPS[step]
            http = await connections.get()
            try:
                body = kit.callback_body(calls[desk].platform_call_id, event)
                began = time.perf_counter()
                pending[(desk, state)] = began
                status, _ = await http.request(
                    "POST", f"/calls/hooks/ryng/{secret}/{kind}", body, {"Content-Type": "application/json"}
                )
                http_took.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
            finally:
                connections.put_nowait(http)

        await kit.paced(rate, batch, one)
        # A saturated server delivers late, not never: wait while frames still come (10 s of
        # silence ends the wait), so the p99 counts the late ones instead of dropping them.
        quiet_since, seen = time.perf_counter(), len(took)
        while pending and time.perf_counter() - quiet_since < 10:
            await asyncio.sleep(0.1)
            if len(took) != seen:
                quiet_since, seen = time.perf_counter(), len(took)
        missing += len(pending)
        pending.clear()
    closed = [d.closed for d in desks if d.closed]
    for desk in desks:
        await desk.close()
    return {
        "took": took,
        "http": kit.ms(http_took),
        "statuses": statuses,
        "missing_frames": missing,
        "closed_desks": len(closed),
        "desks_reopened": kit.REOPENED["count"],
        "frame_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
    }


def bench_events(env: dict) -> list[dict]:
    desks_n = kit.env_int("BENCH_DESKS", 100)
    rate = kit.env_float("BENCH_EVENT_RATE", 200)
    seconds = kit.env_float("BENCH_EVENT_SECONDS", 3)
    count = int(rate * seconds)
    with kit.Stack(env) as stack:
        floor = kit.Floor(desks_n, stack.emulator_url)
        print(f"  {desks_n} desks, {count} callbacks at {rate:g}/s ...", flush=True)
        got = asyncio.run(_events(stack, floor, desks_n, rate, count))
        floor_took = asyncio.run(_redis_floor(env["REDIS_URL"], rate, count, got["frame_bytes"] or 2000))
    now, base = kit.ms(got["took"]), kit.ms(floor_took)
    print(
        f"  event to screen {now}; Redis pub/sub {base}; HTTP answers {got['http']}; "
        f"statuses {got['statuses']}, frames missing {got['missing_frames']}, desks closed {got['closed_desks']}",
        flush=True,
    )
    detail = {
        **{k: v for k, v in got.items() if k != "took"},
        "desks": desks_n,
        "rate": rate,
        "seconds": seconds,
        "event_to_screen": now,
        "redis_pubsub": base,
    }
    return [
        latency_figure(
            f"event to screen p99, {rate:g} callbacks/s over {desks_n} desks",
            "p99 < 25 ms (200/s, 500 desks)",
            25,
            now,
            "Redis pub/sub",
            base,
            ok=got["missing_frames"] == 0,
            full_size=desks_n >= 500 and rate >= 200,
            command_name="events",
            detail=detail,
        )
    ]


# -- item 4: desks per web process ------------------------------------------------------------------


async def _push_probe(
    floor: kit.Floor, desks: list, rate: float, seconds: float, pending: dict
) -> list[float]:
    """``live.send`` of a call/presence/day/alert event to random connected desks, paced."""
    from agentdesk import live

    took: list[float] = []
    pending["took"] = took
    count = int(rate * seconds)

    async def one(i: int) -> None:
        desk = random.choice(desks)
        token = uuid.uuid4().hex
        pending[token] = time.perf_counter()
        event = live.desk_event(
            [live.ALERT, live.CALL, live.PRESENCE, live.DAY], alert=live.alert(f"probe {token}", level="info")
        )
        live.send(live.agent_group(floor.agents[desk.index].pk), event)

    await kit.paced(rate, count, one)
    deadline = time.perf_counter() + 10
    while len(took) < count and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    return took


def bench_desks(env: dict) -> list[dict]:
    step = kit.env_int("BENCH_DESK_STEP", 100)
    cap = kit.env_int("BENCH_DESKS_MAX", 400)
    late_ms = kit.env_float("BENCH_LATE_MS", 250)
    probe_rate = kit.env_float("BENCH_PROBE_RATE", 10)
    steps: list[dict] = []
    with kit.Stack(env) as stack:
        floor = kit.Floor(cap, stack.emulator_url)
        idle_rss = stack.rss_mb()
        pending: dict = {}

        def on_frame(desk, text, at) -> None:
            marker = text.find("probe ")
            if marker >= 0:
                began = pending.pop(text[marker + 6 : marker + 38], None)
                if began is not None:
                    pending["took"].append(at - began)

        async def run() -> None:
            desks: list = []
            while len(desks) < cap:
                started = time.perf_counter()
                desks += await kit.open_desks(
                    floor, stack.web_urls, on_frame, start=len(desks), count=min(step, cap - len(desks))
                )
                connect = time.perf_counter() - started
                took = await _push_probe(floor, desks, probe_rate, 3, pending)
                stats = kit.ms(took)
                closed = sum(1 for d in desks if d.closed)
                steps.append(
                    {
                        "desks": len(desks),
                        "rss_mb": stack.rss_mb(),
                        "push": stats,
                        "connect_s": round(connect, 1),
                        "lost": int(probe_rate * 3) - stats["n"],
                        "closed": closed,
                        "reopened": kit.REOPENED["count"],
                    }
                )
                print(
                    f"  {len(desks)} desks: RSS {steps[-1]['rss_mb']} MB, push {stats}, connect {connect:.1f} s, closed {closed}",
                    flush=True,
                )
                # Late pushes do not stop the climb (the memory per desk is half the figure); a
                # closed desk or a lost push does, and twice the late limit.
                if not stats["n"] or stats["p99_ms"] > 2 * late_ms or closed or steps[-1]["lost"]:
                    break
            for desk in desks:
                await desk.close()

        asyncio.run(run())
    on_time = [
        s
        for s in steps
        if s["push"]["n"] and s["push"]["p99_ms"] <= late_ms and not s["closed"] and not s["lost"]
    ]
    best = on_time[-1] if on_time else steps[0]
    capped = bool(on_time) and best is steps[-1] and best["desks"] >= cap
    held = (
        f"{best['desks']:,} desks{' (the cap)' if capped else ''}"
        if on_time
        else f"late already at {best['desks']:,} desks"
    )
    last = steps[-1]
    per_desk_kb = round((last["rss_mb"] - idle_rss) * 1024 / last["desks"], 1) if last["desks"] else None
    return [
        {
            "figure": f"desks one daphne process holds with pushes on time (p99 <= {late_ms:g} ms)",
            "target": "2,000 desks under 1 GB",
            "now": f"{held}, {best['rss_mb']} MB RSS, push p99 {best['push']['p99_ms']} ms"
            + (
                f"; {last['desks']:,} desks {last['rss_mb']} MB ({per_desk_kb} KB a desk)"
                if last is not best
                else ""
            ),
            "baseline": f"daphne with no desk {idle_rss} MB RSS",
            "ratio": round(best["rss_mb"] / idle_rss, 2) if idle_rss else None,
            "met": bool(on_time) and best["desks"] >= 2000 and best["rss_mb"] < 1024,
            "command": command("desks"),
            "detail": {
                "steps": steps,
                "idle_rss_mb": idle_rss,
                "rss_kb_per_desk": per_desk_kb,
                "late_ms": late_ms,
                "probe_rate": probe_rate,
                "cap": cap,
                "step": step,
            },
        }
    ]


# -- item 5: dial at 100 agents ----------------------------------------------------------------------


def bench_dial(env: dict) -> list[dict]:
    agents = kit.env_int("BENCH_DIAL_AGENTS", 100)
    rounds = kit.env_int("BENCH_DIAL_ROUNDS", 1)
    spread = kit.env_float("BENCH_DIAL_SPREAD", 1.0)
    import redis
    import requests

    with kit.Stack(env) as stack:
        floor = kit.Floor(agents, stack.emulator_url, leads=agents * (rounds + 2))
        client = redis.Redis.from_url(env["REDIS_URL"])

        async def run() -> dict:
            from agentdesk.services import lead_next_for_agent
            from calls.models import Call, CallState
            from campaigns.models import Lead

            desks = await kit.open_desks(floor, stack.web_urls, None)
            https = [kit.HTTP(stack.web_urls[0], floor.cookies[i]) for i in range(agents)]
            http_took, platform, bare_took, task_took = [], [], [], []
            refused: list[str] = []

            def reset() -> list:
                Call.objects.filter(agent__in=floor.agents).exclude(state=CallState.DISPOSED).update(
                    state=CallState.DISPOSED
                )
                Lead.objects.filter(lease_owner__in=floor.agents).update(
                    lease_owner=None, lease_expires_at=None, status=Lead.Status.DONE
                )
                return [lead_next_for_agent(agent=a, campaign=floor.campaign) for a in floor.agents]

            for r in range(rounds + 1):  # the first round warms up
                leads = await asyncio.to_thread(reset)
                requests.post(f"{stack.emulator_url}/_emulator/reset", timeout=10)
                await asyncio.sleep(0.5)
                clicks: dict[str, float] = {}

                async def dial(i: int, leads=leads, clicks=clicks, r=r) -> None:
                    await asyncio.sleep(random.uniform(0, spread))
                    csrf = floor.cookies[i].rsplit("csrftoken=", 1)[1]
                    clicks[leads[i].number] = time.time()
                    began = time.perf_counter()
                    status, body = await https[i].request(
                        "POST",
                        f"/desk/leads/{leads[i].pk}/dial/",
                        b"",
                        {
                            "HX-Request": "true",
                            "X-CSRFToken": csrf,
                            "X-Desk-Tab": desks[i].tab,
                            "Content-Type": "application/x-www-form-urlencoded",
                        },
                    )
                    if status not in (200, 204):
                        refused.append(f"{status} {body[:200]!r}")
                    elif r:
                        http_took.append(time.perf_counter() - began)

                await asyncio.gather(*(dial(i) for i in range(agents)))
                deadline = time.time() + 30
                seen: dict[str, float] = {}
                while time.time() < deadline and len(seen) < len(clicks):
                    await asyncio.sleep(0.5)
                    log = requests.get(
                        f"{stack.emulator_url}/_emulator/requests", params={"platform": "ryng"}, timeout=10
                    ).json()
                    for entry in log:
                        if entry["method"] == "POST" and entry["path"].endswith("/preview/call"):
                            text = entry.get("body", "") + json.dumps(entry.get("query", ""))
                            for number in clicks:
                                if number.lstrip("+") in text.replace("%2B", "+"):
                                    seen[number] = entry["at"]
                if r:
                    platform += [seen[n] - clicks[n] for n in seen]
                    refused.extend([f"never reached the platform: {n}" for n in clicks if n not in seen])

                    # Baselines at the same burst: the bare view, and a no-op Celery task.
                    async def bare(i: int) -> None:
                        await asyncio.sleep(random.uniform(0, spread))
                        began = time.perf_counter()
                        await https[i].request("GET", "/favicon.ico")
                        bare_took.append(time.perf_counter() - began)

                    await asyncio.gather(*(bare(i) for i in range(agents)))
                    keys = {}
                    for _ in range(agents):
                        key = f"{kit.PREFIX}:marker:{uuid.uuid4().hex}"
                        keys[key] = time.time()
                        kit.marker.delay(key)
                        await asyncio.sleep(spread / agents)
                    for key, sent_at in keys.items():
                        got = await asyncio.to_thread(client.blpop, [key], 30)
                        if got is not None:
                            task_took.append(float(got[1]) - sent_at)
            for desk in desks:
                await desk.close()
            for http in https:
                http.close()
            return {
                "http": http_took,
                "platform": platform,
                "bare": bare_took,
                "task": task_took,
                "refused": refused,
            }

        got = asyncio.run(run())
    http, plat, bare, task = (kit.ms(got[k]) for k in ("http", "platform", "bare", "task"))
    print(
        f"  dial HTTP {http}; bare view {bare}; to platform {plat}; no-op task {task}; refused {got['refused'][:3]} ({len(got['refused'])})",
        flush=True,
    )
    detail = {
        "agents": agents,
        "rounds": rounds,
        "spread_s": spread,
        "http": http,
        "platform": plat,
        "bare_view": bare,
        "noop_task": task,
        "refused": len(got["refused"]),
        "desks_reopened": kit.REOPENED["count"],
        "refused_first": got["refused"][:3],
    }
    ok = not got["refused"]
    return [
        latency_figure(
            f"dial click to HTTP answer p99, {agents} agents",
            "p99 < 50 ms",
            50,
            http,
            "bare view",
            bare,
            ok=ok,
            full_size=agents >= 100,
            command_name="dial",
            detail=detail,
        ),
        latency_figure(
            f"dial click to platform request p99, {agents} agents",
            "p99 < 100 ms",
            100,
            plat,
            "no-op Celery task",
            task,
            ok=ok,
            full_size=agents >= 100,
            command_name="dial",
            detail=detail,
        ),
    ]


# -- item 7: scale-out -----------------------------------------------------------------------------------


def bench_scaleout(env: dict) -> list[dict]:
    one = run_callbacks(env, webs=1, workers=1, label="1 web + 1 worker: ")
    two = run_callbacks(env, webs=2, workers=2, label="2 web + 2 workers: ")
    for r in (one, two):
        print(
            f"  {r['webs']} web: {r['per_second']}/s (bare {r['bare_per_second']}/s), lost {r['lost']}, doubled {r['doubled']}",
            flush=True,
        )
    gain = two["per_second"] / one["per_second"] if one["per_second"] else None
    return [
        {
            "figure": "scale-out: callbacks/s on 2 web + 2 workers",
            "target": "what the second process buys",
            "now": f"{two['per_second']:,.0f}/s (bare view {two['bare_per_second']:,.0f}/s)",
            "baseline": f"1 web + 1 worker {one['per_second']:,.0f}/s (bare view {one['bare_per_second']:,.0f}/s)",
            "ratio": round(gain, 2) if gain else None,
            "met": None if callbacks_ok(one) and callbacks_ok(two) else False,
            "command": command("scaleout"),
            "detail": {"one": one, "two": two},
        }
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("bench", choices=[*COMMANDS, "all"])
    parser.add_argument("--tiny", action="store_true", help="the smoke test's sizes (seconds, a few desks)")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", kit.DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", kit.DEFAULT_REDIS))
    parser.add_argument("--json", type=Path, help="also write the run's figures here")
    parser.add_argument("--no-record", action="store_true", help="leave bench/results.json alone")
    args = parser.parse_args()
    if args.tiny:
        for key, value in TINY.items():
            os.environ.setdefault(key, value)
    started = time.perf_counter()
    env = kit.setup_django(args.database_url, args.redis_url)
    figures: list[dict] = []
    for name in COMMANDS if args.bench == "all" else (args.bench,):
        print(f"{name} ...", flush=True)
        began = time.perf_counter()
        figures += globals()[f"bench_{name}"](env)
        print(f"  {name}: {time.perf_counter() - began:.0f} s", flush=True)
    for figure in figures:
        figure.setdefault("machine", results.machine())
        figure.setdefault("date", results.stamp())
        figure["load_average"] = [round(x, 2) for x in os.getloadavg()]
    print()
    print(results.table(figures))
    print(f"total {time.perf_counter() - started:.0f} s; load average {os.getloadavg()[0]:.2f}")
    if not args.no_record:
        results.record(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))
    broken = [f["figure"] for f in figures if not _exact(f)]
    if broken:
        sys.exit(f"a callback was lost or applied twice: {broken}")


def _exact(figure: dict) -> bool:
    """No callback lost, refused or applied twice in this figure's run(s)."""
    detail = figure.get("detail", {})
    runs = [detail["one"], detail["two"]] if "one" in detail else [detail] if "lost" in detail else []
    return all(callbacks_exact(r) for r in runs)


if __name__ == "__main__":
    main()

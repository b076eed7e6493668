"""``python -m bench.shift [run] [options]``: run a shift and check it (``make shift``).
``python -m bench.shift check --since <ISO time> [--emulator-url URL]``: only the checks that need
no desk, against the database in the environment (``DATABASE_URL``, ``AGENTDESK_VAR_DIR``).

Exit status: 0 when every invariant holds, 1 when one breaks, 2 when the shift could not run.
See docs/shift.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.shift.stack import ROOT, Stack, stack_start


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.shift", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a shift (the default)")
    run.add_argument("--agents", type=int, default=30, help="simulated agents (default 30)")
    run.add_argument("--minutes", type=float, default=10, help="platform minutes of shift (default 10)")
    run.add_argument(
        "--time-scale",
        type=float,
        default=0.05,
        help="real seconds per platform second (EMULATOR_TIME_SCALE; default 0.05: 8 h in 24 min)",
    )
    run.add_argument("--seed", type=int, default=1, help="the random seed of the floor (default 1)")
    run.add_argument("--url", help="an already running stack (its emulators: --emulator-url)")
    run.add_argument("--emulator-url", help="the running stack's emulators")
    run.add_argument(
        "--var-dir", default=str(ROOT / "var" / "shift"), help="the started stack's var dir (emptied first)"
    )
    run.add_argument(
        "--chaos-every",
        type=float,
        default=45,
        help="platform seconds between two misfortunes on average (default 45; lower is denser)",
    )
    run.add_argument("--no-kill", action="store_true", help="do not kill the dial worker mid-shift")
    run.add_argument("--json", help="also write the results here")
    check = sub.add_parser("check", help="check the invariants of a past shift")
    check.add_argument("--since", required=True, help="ISO time the shift started")
    check.add_argument("--emulator-url", help="also read the emulators' request logs and calls")
    args = parser.parse_args(argv if argv and argv[0] in ("run", "check", "-h", "--help") else ["run", *argv])
    return args


def django_setup(env: dict[str, str]) -> None:
    """This process reads and writes the stack's database directly (the floor, the checks)."""
    for key in ("DATABASE_URL", "AGENTDESK_VAR_DIR", "REDIS_URL", "EMULATOR_URL", "PUBLIC_BASE_URL"):
        if env.get(key):
            os.environ[key] = env[key]
    os.environ["AGENTDESK_DEMO"] = "1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agentdesk.settings")
    import django

    django.setup()


STARTED = time.monotonic()


def say(message: str) -> None:
    print(f"shift | {time.monotonic() - STARTED:6.1f}s | {message}", flush=True)


def check_command(args: argparse.Namespace) -> int:
    django_setup(dict(os.environ))
    from bench.shift.invariants import check_database

    since = datetime.fromisoformat(args.since)
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    results = check_database(since=since, emulator_url=args.emulator_url, since_epoch=since.timestamp())
    return report(results)


def report(results) -> int:
    print("\nInvariants:", flush=True)
    for result in results:
        print("  " + result.line().replace("\n", "\n  "), flush=True)
    broken = [result.name for result in results if not result.ok]
    print(f"\n{'FAILED: ' + ', '.join(broken) if broken else 'All invariants hold.'}", flush=True)
    return 1 if broken else 0


def run_command(args: argparse.Namespace) -> int:
    stack: Stack | None = None
    if args.url:
        if not args.emulator_url:
            raise SystemExit("--url needs --emulator-url")
        stack = Stack(args.url.rstrip("/"), args.emulator_url.rstrip("/"), dict(os.environ))
    else:
        say(f"starting a stack in {args.var_dir} (EMULATOR_TIME_SCALE={args.time_scale})")
        stack = stack_start(var_dir=Path(args.var_dir), time_scale=args.time_scale)
        say(f"stack healthy at {stack.url}, emulators at {stack.emulator_url}; its log: {stack.log_path}")
    try:
        return shift(args, stack)
    finally:
        if stack.process is not None:
            say("stopping the stack")
            stack.stop()


def shift(args: argparse.Namespace, stack: Stack) -> int:
    django_setup(stack.env)
    from django.utils import timezone

    from bench.shift.desk import SimulatedAgent
    from bench.shift.floor import floor_prepare
    from bench.shift.invariants import check_database, closed_while_live, platform_live_calls
    from bench.shift.script import Chaos, Script

    scale = args.time_scale
    if args.url:  # the running stack's own scale
        import requests

        scale = requests.get(f"{stack.emulator_url}/_emulator/health", timeout=10).json()["time_scale"]
    # About one lead per agent per platform minute is more than a floor gets through.
    seats = floor_prepare(
        agents=args.agents,
        leads_per_platform=int(args.agents * args.minutes / 2) + 30,
        emulator_url=stack.emulator_url,
    )
    since, since_epoch = timezone.now(), time.time()
    real_seconds = args.minutes * 60 * scale
    say(
        f"{args.agents} agents, {args.minutes:g} platform minutes ({real_seconds:.0f} s real),"
        f" seed {args.seed}, started {since:%H:%M:%S}"
    )
    script = Script(stack.emulator_url)
    stop = threading.Event()
    agents = [
        SimulatedAgent(
            username=seat.username,
            campaign_id=seat.campaign_id,
            base_url=stack.url,
            emulator_url=stack.emulator_url,
            script=script,
            scale=scale,
            seed=args.seed * 1000 + n,
        )
        for n, seat in enumerate(seats)
    ]
    chaos = Chaos(
        emulator_url=stack.emulator_url,
        scale=scale,
        every=args.chaos_every,
        huawei_agents=[seat.platform_ref for seat in seats if seat.platform == "huawei"],
        stop=stop,
        seed=args.seed,
    )
    for agent in agents:
        agent.start()
        time.sleep(0.5)  # a floor signs in over a moment, not in one instant
    chaos.start()
    sampled: list[str] = []
    previous: set[str] = set()
    kill: dict = {}
    killer: threading.Thread | None = None
    started = time.monotonic()
    while time.monotonic() - started < real_seconds:
        half_way = time.monotonic() - started > real_seconds / 2
        if not args.no_kill and stack.process is not None and killer is None and half_way:
            say("killing the dial worker's main process (SIGKILL)")
            killer = threading.Thread(target=lambda: kill.update(stack.kill_dial_worker()), daemon=True)
            killer.start()
        # A disposition's platform request (Ryng: the call ends with it) follows its commit by a
        # moment: only a call found closed-while-live in two samples in a row counts.
        found = set(
            sample_closed_while_live(
                since, stack.emulator_url, agents, closed_while_live, platform_live_calls
            )
        )
        sampled += sorted(found & previous)
        previous = found
        time.sleep(min(5, max(1, real_seconds / 20)))
    if killer is not None:
        killer.join(120)
        say(f"dial worker: {kill}")
    say("the shift is over: every agent ends, disposes, goes Offline and signs out")
    stop.set()
    for agent in agents:
        agent.wind_down.set()
    for agent in agents:
        agent.done.wait(300)
    say(f"every desk closed ({sum(agent.done.is_set() for agent in agents)} of {len(agents)})")
    time.sleep(3)  # the last dispositions' platform requests (Celery) go out
    results = check_database(
        since=since,
        emulator_url=stack.emulator_url,
        since_epoch=since_epoch,
        holds={agent.username: agent.stats.holds for agent in agents},
        closed_live_samples=sampled,
        desks=[
            agent.final or {"agent": agent.username, "same": False, "frame": {}, "http": "never compared"}
            for agent in agents
        ],
        desks_closed=all(agent.done.is_set() for agent in agents),
    )
    summary(agents, chaos, kill, stack, since)
    errors = [f"{agent.username}: {error}" for agent in agents for error in agent.stats.errors]
    if errors:
        print("\nAgent errors:", *[f"  {error}" for error in errors[:20]], sep="\n")
    code = report(results)
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "results": [
                        {"name": r.name, "checked": r.checked, "broken": r.broken, "note": r.note}
                        for r in results
                    ],
                    "agent_errors": errors,
                    "worker_kill": kill,
                    "desks": [agent.final for agent in agents],
                },
                indent=2,
                default=str,
            )
        )
    if errors and code == 0:
        print("FAILED: agents met errors (above)")
        return 1
    if kill.get("killed") and not kill.get("back_after"):
        print("FAILED: the killed dial worker never came back")
        return 1
    return code


def sample_closed_while_live(
    since, emulator_url, agents, closed_while_live, platform_live_calls
) -> list[str]:
    """During the shift: calls we closed that a platform still has up, leaving out those an
    agent ended that are not disposed yet (Ryng ends the platform call with the disposition) and
    those whose end the product is still sending (``Call.platform_end_due_at``)."""
    from calls.models import Call, CallState

    spare = set()
    for agent in agents:
        spare |= agent.stats.ended_by_agent
    spare -= set(Call.objects.filter(pk__in=spare, state=CallState.DISPOSED).values_list("pk", flat=True))
    # Ending: the product still owes the platform this call's end (a PATCH answered slowly, or
    # retried after Ryng's 500s) and keeps trying; the check after the shift spares none.
    spare |= set(Call.objects.filter(platform_end_due_at__isnull=False).values_list("pk", flat=True))
    try:
        live = platform_live_calls(emulator_url)
    except Exception:  # the sampler never stops the shift; the final check reads again
        return []
    return closed_while_live(since, live, spare)


def summary(agents, chaos, kill: dict, stack: Stack, since) -> None:
    from django.db.models import Count

    from bench.shift.invariants import shift_calls

    totals: dict[str, int] = {}
    for agent in agents:
        for key, value in agent.stats.counts.items():
            totals[key] = totals.get(key, 0) + value
    print("\nThe floor:", flush=True)
    for key in sorted(totals):
        print(f"  {key:<28} {totals[key]}")
    print("Calls by state:", flush=True)
    for row in shift_calls(since).values("state", "failure_reason").annotate(n=Count("id")).order_by("state"):
        reason = f" ({row['failure_reason']})" if row["failure_reason"] else ""
        print(f"  {row['state']}{reason:<20} {row['n']}")
    print("Platform misfortunes:", flush=True)
    for key in sorted(chaos.done):
        print(f"  {key:<40} {chaos.done[key]}")
    if kill:
        back = kill.get("back_after")
        print(
            f"Dial worker killed: pid {kill.get('pid')}, "
            + (f"back as pid {kill.get('new_pid')} after {back:.1f} s" if back else f"NOT back: {kill}"),
            flush=True,
        )
    health = stack.health()
    print(f"/healthz at the end: {health.get('http')} {health.get('status', health.get('error', ''))}")


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.command == "check":
        return check_command(args)
    try:
        return run_command(args)
    except RuntimeError as exc:
        print(f"shift | could not run: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

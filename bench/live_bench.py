"""Live-path benchmark: how long the desk's live paths take, each against a floor measured in the
same run on the same processes.

    python bench/live_bench.py [--iterations 200] [--quick] [--json out.json]
        [--database-url postgres://...] [--redis-url redis://...] [--leads 100000]

Starts real processes (the emulators, daphne serving ``agentdesk.asgi:application``, and a
``celery -A agentdesk worker -Q dial,default``) on PostgreSQL and Redis, seeds the demo, signs two
demo agents in over HTTP (a login POST) and opens a WebSocket per agent on ``/ws/desk/``. Then:

1. **Event to screen**: ``calls.services.call_apply_signal`` (a committed transaction in this
   process) until the call panel, rendered by the socket's consumer when the event arrives,
   reaches the agent's WebSocket. Floor: a message of the frame's size through the channel layer
   (Redis) and back to this process (``LayerRoundTrip``: no AgentDesk code, so the same floor
   measures any version of the product).
2. **Dial click to platform**: the desk's ``hx-post`` to ``/desk/leads/<id>/dial/`` through
   daphne, then ``place_call`` on the Celery worker, then Ryng Make Preview Call on the
   emulator, until the frame showing the call past ``dial_requested`` reaches the socket. The
   emulator's request log gives the moment the platform saw the request. Floor: a no-op Celery
   task (``.delay()`` until its Redis marker is seen). A task that pushes a frame (task to
   screen) is reported too. The click's HTTP answer (no Celery in it) is set against the desk's
   re-read of item 4 instead.
3. **Next lead**: ``agentdesk.services.lead_next_for_agent`` (the lease) on a campaign of
   ``--leads`` leads. Floor: a plain indexed ``SELECT id ... LIMIT 1`` of a pending lead.
4. **Next preview after Save**: the agent's Save on a call that ended (``POST /desk/dispose/``
   through daphne: the disposition written, the next lead leased, the whole desk rendered) until
   its answer shows the next lead's card. Floor: the desk's re-read (``GET /desk/state/``: the
   same desk rendered, nothing written). Target (issue 16): under 100 ms p95. Measured twice: a
   Save naming no tab (its HTTP answer is the desk), and a Save from a desk tab as the browser
   sends it (``X-Desk-Tab``: a 204, then the first frame on the tab's socket showing the next
   lead), which is what the agent sees. The tab's socket draws the working area first and the
   lists below it (the day, callbacks, recent calls) in a frame after: the time until that frame
   is reported too (``whole desk after Save (tab)``).

Timed paths alternate with their floors, iteration by iteration, after a warm-up. The first
message after an idle spell is probed separately (``--idle-seconds``). Prints a table and, on the
last line of stdout, the same figures as JSON (also written to ``--json``). Figures are recorded
in BENCHMARKS.md. Timings are for reading, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from celery import shared_task
from celery.signals import task_prerun
from loadkit import EMULATOR_TIME_SCALE, STATE_RE, marker, redis_client, setup_django

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agentdesk_livebench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/11"
PREFIX = "livebench"
# EMULATOR_TIME_SCALE: Ryng's agent leg rings for 1 platform second, 1000 real seconds here, so no
# platform callback lands during the run and the dial path is measured alone (the emulator is
# reset, its timers cancelled, at the end).


# -- tasks the worker imports (``--include bench.live_bench``) -------------------------------------


@task_prerun.connect
def _place_call_started(sender=None, task_id=None, task=None, args=None, **_kwargs) -> None:
    """In the worker: when ``place_call`` starts, note the wall clock under its call id, so the
    bench can split a dial's way to the platform into the hop to the worker and the worker's own
    work."""
    if getattr(task, "name", "") != "calls.tasks.place_call" or not args:
        return
    redis_client().set(f"{PREFIX}:prerun:{args[0]}", repr(time.time()), ex=600)


@shared_task(name="livebench.push", ignore_result=True)
def push(group: str, message: str) -> None:
    """A task whose only work is a live push (the path STACK-NOTES timed: task to frame): an alert
    event, which the consumer renders without reading the desk. (Before events, the product sent
    rendered HTML: the same frame, pushed as is, so the bench also runs on older versions.)"""
    from agentdesk import live

    if hasattr(live, "desk_event"):
        live.send(group, live.desk_event([live.ALERT], alert=live.alert(message, level="info")))
    else:
        live.send(group, f'<div id="{PREFIX}-{message}"></div>')


# -- statistics and output -------------------------------------------------------------------------


def ms_stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(p95 * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def row(metric: str, samples: list[float], baseline: str, base_samples: list[float]) -> dict:
    measured, floor = ms_stats(samples), ms_stats(base_samples)
    return {
        "metric": metric,
        **measured,
        "baseline": baseline,
        "baseline_median_ms": floor["median_ms"],
        "baseline_p95_ms": floor["p95_ms"],
        "ratio": round(measured["median_ms"] / floor["median_ms"], 2) if floor["median_ms"] else None,
    }


def print_table(rows: list[dict]) -> None:
    head = f"{'metric':<34} {'median ms':>10} {'p95 ms':>9} {'baseline median ms':>19} {'ratio':>7}  baseline"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['metric']:<34} {r['median_ms']:>10.2f} {r['p95_ms']:>9.2f} "
            f"{r['baseline_median_ms']:>19.2f} {r['ratio']:>6.2f}x  {r['baseline']}"
        )


# -- setup -----------------------------------------------------------------------------------------


class Stack:
    """The emulators, daphne and one Celery worker as child processes (stopped by :meth:`stop`)."""

    def __init__(self, work: Path, env: dict[str, str]):
        from tests.emulator_fixtures import free_port
        from tests.process_fixtures import BIN, ManagedProcess

        self.emulator_url = f"http://127.0.0.1:{free_port()}"
        self.base_url = f"http://127.0.0.1:{free_port()}"
        env.update(EMULATOR_URL=self.emulator_url, PUBLIC_BASE_URL=self.base_url)
        os.environ.update(env)
        env = dict(os.environ)
        logs = work / "logs"
        emulator_env = {**env, "EMULATOR_TIME_SCALE": EMULATOR_TIME_SCALE, "EMULATOR_LOG_LEVEL": "WARNING"}
        port = urlparse(self.emulator_url).port
        web_port = urlparse(self.base_url).port
        self.processes = {
            "emulators": ManagedProcess(
                "emulators",
                [sys.executable, "-m", "emulators", "--port", str(port)],
                emulator_env,
                logs / "emulators.log",
            ),
            "web": ManagedProcess(
                "web",
                [str(BIN / "daphne"), "-b", "127.0.0.1", "-p", str(web_port), "agentdesk.asgi:application"],
                env,
                logs / "web.log",
            ),
            "worker": ManagedProcess(
                "worker",
                [
                    str(BIN / "celery"),
                    "-A",
                    "agentdesk",
                    "worker",
                    "-Q",
                    "dial,default",
                    "-n",
                    f"livebench-{os.getpid()}@%h",
                    "-c",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                    "--include",
                    "bench.live_bench",
                    "--loglevel",
                    "WARNING",
                ],
                env,
                logs / "worker.log",
            ),
        }

    def start(self) -> None:
        from tests.emulator_fixtures import wait_for_http
        from tests.process_fixtures import wait_for_worker

        try:
            for proc in self.processes.values():
                proc.start()
            wait_for_http(f"{self.emulator_url}/_emulator/health", timeout=30)
            wait_for_http(f"{self.base_url}/login/", timeout=30)
            wait_for_worker(f"livebench-{os.getpid()}", timeout=30)
        except Exception:
            print(self.logs(), file=sys.stderr)
            self.stop()
            raise

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.log_tail()}" for name, proc in self.processes.items())

    def stop(self) -> None:
        import requests

        with contextlib.suppress(requests.RequestException):
            requests.post(f"{self.emulator_url}/_emulator/reset", timeout=5)  # cancels Ryng timers
        for proc in self.processes.values():
            proc.stop()


def login(base_url: str, username: str, password: str):
    """A real sign-in: GET the form, POST it with its CSRF token; returns the requests session."""
    import requests

    session = requests.Session()
    form = session.get(f"{base_url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)
    answer = session.post(
        f"{base_url}/login/",
        data={
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1) if token else "",
        },
        allow_redirects=False,
        timeout=10,
    )
    if answer.status_code != 302 or "sessionid" not in session.cookies:
        raise SystemExit(f"login as {username} failed ({answer.status_code})")
    return session


def htmx_post(session, url: str, data: dict | None = None, headers: dict | None = None):
    return session.post(
        url,
        data=data or {},
        headers={
            "HX-Request": "true",
            "X-CSRFToken": session.cookies.get("csrftoken", ""),
            **(headers or {}),
        },
        timeout=15,
    )


def open_socket(base_url: str, session, tab: str = ""):
    """A desk's WebSocket; ``tab`` names it as the desk page does (``?tab=``), so a command sent
    with that ``X-Desk-Tab`` is answered through it."""
    from tests.calls.wsclient import WSClient

    cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    query = f"?tab={tab}" if tab else ""
    return WSClient(base_url.replace("http://", "ws://") + f"/ws/desk/{query}", cookie=cookie, timeout=10)


def drain(ws, wait: float = 0.01) -> None:
    """Throw away frames already queued (pushes from setup steps), answering daphne's pings."""
    while True:
        try:
            ws.recv(timeout=wait)
        except TimeoutError:
            return


# Every open socket. daphne pings each every 20 s and closes one that has not answered within
# 30 s more; the client answers only while reading, so idle sockets are read between samples.
SOCKETS: list = []


def keepalive() -> None:
    for ws in SOCKETS:
        drain(ws, 0.001)


def settle(ws, lead) -> None:
    """The desk shows ``lead`` before the agent acts on it: where a lease sends its own event
    (the socket renders the card), that frame arrives first, untimed, as a person would wait for
    it; then nothing from the setup is left rendering while a command is timed."""
    with contextlib.suppress(AssertionError):
        ws.recv_until(lambda f: lead.number in f, timeout=0.3)
    drain(ws)


def reset_desk(agent, presence: str = "ready") -> None:
    """Nothing on the agent's desk: calls disposed, held leads worked (never offered again)."""
    from agentdesk.models import Agent
    from calls.models import Call, CallState
    from campaigns.models import Lead

    Call.objects.filter(agent=agent).exclude(state=CallState.DISPOSED).update(state=CallState.DISPOSED)
    Lead.objects.filter(lease_owner=agent).update(
        lease_owner=None, lease_expires_at=None, status=Lead.Status.DONE
    )
    Agent.objects.filter(pk=agent.pk).update(presence=presence)


def frame_state(frame: str) -> str | None:
    found = STATE_RE.search(frame)
    return found.group(1) if found else None


def seed(leads: int, emulator_url: str) -> dict:
    """Demo rows plus the benchmark's own campaigns (kept between runs, reset each run)."""
    from datetime import time as dtime

    from django.conf import settings

    from agentdesk.demo import seed_demo
    from agentdesk.models import Agent, Presence
    from calls.models import Call, CallState, TelephonyAccount
    from campaigns.models import Campaign, Lead

    settings.DEMO_MODE = True
    seed_demo(emulator_url=emulator_url)
    account = TelephonyAccount.objects.get(name="Demo Ryng")

    def campaign(name: str) -> Campaign:
        found, _ = Campaign.objects.get_or_create(
            name=name, defaults={"account": account, "platform_campaign_id": "595", "attempt_cap": 3}
        )
        # Open all day to the microsecond, so a run at 23:59 in the leads' zone is not refused.
        found.window_start, found.window_end = dtime(0, 0), dtime(23, 59, 59, 999999)
        found.save(update_fields=["window_start", "window_end"])
        return found

    dial = campaign(f"{PREFIX} dial")
    big = campaign(f"{PREFIX} {leads} leads")
    agents = {
        a.user.username: a
        for a in Agent.objects.select_related("user").filter(user__username__startswith="agent")
    }
    for agent in agents.values():
        dial.agents.add(agent)
        big.agents.add(agent)
    # Calls left by an earlier run must not sit on a desk.
    Call.objects.filter(agent__in=agents.values()).exclude(state=CallState.DISPOSED).update(
        state=CallState.DISPOSED
    )
    Agent.objects.filter(pk__in=[a.pk for a in agents.values()]).update(presence=Presence.READY)
    Lead.objects.filter(lease_owner__in=agents.values()).update(lease_owner=None, lease_expires_at=None)
    _fill(big, leads, "+1212")
    _fill(dial, 2000, "+1312")
    # Reset what an earlier run worked; only those rows are touched.
    for camp in (big, dial):
        Lead.objects.filter(campaign=camp).exclude(status=Lead.Status.PENDING).update(
            status=Lead.Status.PENDING, attempts=0
        )
        Lead.objects.filter(campaign=camp, attempts__gt=0).update(attempts=0)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("ANALYZE campaigns_lead")
    return {"account": account, "dial": dial, "big": big, "agents": agents}


def _fill(campaign, count: int, area: str) -> None:
    from campaigns.models import Lead

    have = Lead.objects.filter(campaign=campaign).count()
    if have >= count:
        return
    print(f"  inserting {count - have} leads into {campaign.name} ...", flush=True)
    batch = []
    for i in range(have, count):
        batch.append(
            Lead(
                campaign=campaign,
                number=f"{area}{i:07d}",
                raw_number=f"{area}{i:07d}",
                name=f"Lead {i}",
                custom_fields={"City": "Springfield", "Plan": "Plus"},
                timezone="America/New_York",
                source=Lead.Source.SHEET,
            )
        )
        if len(batch) == 5000:
            Lead.objects.bulk_create(batch)
            batch = []
    Lead.objects.bulk_create(batch)


# -- 1. event to screen ----------------------------------------------------------------------------


class LayerRoundTrip:
    """The floor of any live path: a message of a given size through the channel layer (Redis)
    and back to a channel this process listens on, on one persistent event loop. It uses no
    AgentDesk code, so the same floor serves any version of the product."""

    def __init__(self):
        import asyncio
        import threading

        from channels.layers import get_channel_layer

        self.layer = get_channel_layer()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="bench-layer", daemon=True).start()
        self.group = f"{PREFIX}-floor-{uuid.uuid4().hex[:8]}"
        self.channel = self._run(self.layer.new_channel())
        self._run(self.layer.group_add(self.group, self.channel))

    def _run(self, coro):
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def once(self, size: int) -> float:
        token = uuid.uuid4().hex
        message = {"type": "bench.floor", "text": token + "x" * max(0, size - len(token))}

        async def round_trip():
            await self.layer.group_send(self.group, message)
            while (await self.layer.receive(self.channel))["text"][:32] != token:
                pass

        started = time.perf_counter()
        self._run(round_trip())
        return time.perf_counter() - started


class EventPath:
    """``call_apply_signal`` until the call panel frame, against a channel-layer round trip."""

    def __init__(self, ws, agent, account, lead):
        from agentdesk import live

        self.ws, self.agent, self.account, self.lead = ws, agent, account, lead
        self.group = live.agent_group(agent.pk)
        self.frame_size = 2000  # corrected from the first real frame
        self.floor = LayerRoundTrip()

    def _new_call(self):
        from django.utils import timezone

        from calls.models import Call, CallState

        Call.objects.filter(agent=self.agent).exclude(state=CallState.DISPOSED).update(
            state=CallState.DISPOSED
        )
        return Call.objects.create(
            lead=self.lead,
            campaign=self.lead.campaign,
            agent=self.agent,
            account=self.account,
            state=CallState.DIALING,
            state_changed_at=timezone.now(),
            dialed_at=timezone.now(),
            number=self.lead.number,
        )

    def event_once(self) -> float:
        from calls.providers.base import Signal
        from calls.services import call_apply_signal

        call = self._new_call()
        drain(self.ws)
        signal = Signal(
            kind="call", key=f"{PREFIX}:{uuid.uuid4()}", call_id=f"lb{call.pk}", state="agent_ringing"
        )
        started = time.perf_counter()
        call_apply_signal(account=self.account, signal=signal, source="bench", call_hint=str(call.key))
        frames = self.ws.recv_until(lambda f: frame_state(f) == "agent_ringing", timeout=10)
        elapsed = time.perf_counter() - started
        self.frame_size = len(frames[-1])
        return elapsed

    def raw_once(self) -> float:
        return self.floor.once(self.frame_size)


# -- 2. dial click to platform ---------------------------------------------------------------------


class DialPath:
    def __init__(self, ws, session, base_url: str, agent, campaign):
        from agentdesk import live

        self.ws, self.session, self.base_url = ws, session, base_url
        self.agent, self.campaign = agent, campaign
        self.group = live.agent_group(agent.pk)
        self.sent: list[tuple[str, float, float]] = []  # (number, wall clock at click, frame time)
        self.http: list[float] = []
        self.calls: list[tuple[int, float]] = []  # (lead id, wall clock at click)

    def _reset_desk(self) -> None:
        reset_desk(self.agent)

    def dial_once(self, record: bool = True) -> float:
        from agentdesk.services import lead_next_for_agent

        self._reset_desk()
        lead = lead_next_for_agent(agent=self.agent, campaign=self.campaign)
        if lead is None:
            raise SystemExit("the dial campaign ran out of leads")
        settle(self.ws, lead)  # the agent clicks Dial on a lead the desk shows
        wall = time.time()
        started = time.perf_counter()
        answer = htmx_post(self.session, f"{self.base_url}/desk/leads/{lead.pk}/dial/")
        http = time.perf_counter() - started
        # The answer may already show "dialing": the worker can beat the view's own render.
        if answer.status_code != 200 or frame_state(answer.text) not in ("dial_requested", "dialing"):
            alert = re.search(r'id="desk-alert".*?</', answer.text, re.S)
            raise SystemExit(
                f"dial refused ({answer.status_code}): {alert.group(0) if alert else answer.text[:300]}"
            )
        self.ws.recv_until(lambda f: frame_state(f) not in (None, "dial_requested", "previewing"), timeout=15)
        elapsed = time.perf_counter() - started
        if record:
            self.sent.append((lead.number, wall, elapsed))
            self.http.append(http)
            self.calls.append((lead.pk, wall))
        return elapsed

    def worker_delays(self) -> list[float]:
        """Click to ``place_call``'s start in the worker (``task_prerun``, wall clocks)."""
        from calls.models import Call

        client, delays = self._client(), []
        for lead_id, wall in self.calls:
            call_id = (
                Call.objects.filter(lead_id=lead_id).order_by("-id").values_list("id", flat=True).first()
            )
            started = client.get(f"{PREFIX}:prerun:{call_id}") if call_id else None
            if started is not None:
                delays.append(float(started) - wall)
        return delays

    def _client(self):
        return redis_client()

    def task_once(self) -> float:
        """Floor: a no-op task's round trip, ``.delay()`` until its marker is in Redis."""
        key = f"{PREFIX}:marker:{uuid.uuid4().hex}"
        client = self._client()
        started = time.perf_counter()
        marker.delay(key)
        if client.blpop([key], timeout=10) is None:
            raise SystemExit("the no-op task's marker never came (is the worker up?)")
        return time.perf_counter() - started

    def task_push_once(self) -> float:
        drain(self.ws)
        token = uuid.uuid4().hex
        started = time.perf_counter()
        push.delay(self.group, token)
        self.ws.recv_until(lambda f: token in f, timeout=10)
        return time.perf_counter() - started

    def platform_delays(self, emulator_url: str) -> list[float]:
        """Click to the emulator's receipt of Make Preview Call, from its request log (wall
        clocks of two processes on one machine)."""
        import requests

        log = requests.get(f"{emulator_url}/_emulator/requests", timeout=10).json()
        seen: dict[str, float] = {}
        for entry in log:
            if entry.get("path", "").endswith("/preview/call") and entry.get("method") == "POST":
                number = re.sub(
                    r"\D", "", json.dumps(entry.get("body", "")) + json.dumps(entry.get("query", ""))
                )
                seen[number] = entry["at"]
        delays = []
        for number, wall, _ in self.sent:
            digits = re.sub(r"\D", "", number)
            at = next((at for key, at in seen.items() if digits in key), None)
            if at is not None:
                delays.append(at - wall)
        return delays


# -- 3. next lead ----------------------------------------------------------------------------------


class NextLead:
    def __init__(self, agent, campaign):
        self.agent, self.campaign = agent, campaign

    def lease_once(self) -> float:
        from agentdesk.services import lead_next_for_agent
        from campaigns.models import Lead

        started = time.perf_counter()
        lead = lead_next_for_agent(agent=self.agent, campaign=self.campaign)
        elapsed = time.perf_counter() - started
        if lead is None:
            raise SystemExit("the big campaign has no offerable lead")
        # Worked: the next ask must lease a new row, not renew this one.
        Lead.objects.filter(pk=lead.pk).update(
            status=Lead.Status.DONE, lease_owner=None, lease_expires_at=None
        )
        return elapsed

    def select_once(self) -> float:
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cur:
            cur.execute(
                "SELECT id FROM campaigns_lead WHERE campaign_id = %s AND status = 'pending' "
                "ORDER BY id LIMIT 1",
                [self.campaign.pk],
            )
            cur.fetchone()
        return time.perf_counter() - started

    def explain(self) -> dict[str, str]:
        """Plans of both queries, to explain the ratio."""
        from django.db import connection, transaction
        from django.utils import timezone

        from agentdesk.services import _offerable

        qs = _offerable(agent=self.agent, campaign=self.campaign, now=timezone.now()).select_for_update(
            skip_locked=True, of=("self",)
        )
        with transaction.atomic():
            lease_plan = qs.values_list("id", flat=True)[:1].explain()
        with connection.cursor() as cur:
            cur.execute(
                "EXPLAIN SELECT id FROM campaigns_lead WHERE campaign_id = %s AND status = 'pending' "
                "ORDER BY id LIMIT 1",
                [self.campaign.pk],
            )
            select_plan = "\n".join(r[0] for r in cur.fetchall())
        return {"lease": lease_plan, "select": select_plan}


# -- 4. next preview after Save ----------------------------------------------------------------------

PREVIEW_RE = re.compile(r'id="desk-preview"[^>]*data-lead-id="(\d*)"')


class SaveAndNext:
    """The agent presses Save on a call that ended; the answer is the desk with the next lead."""

    def __init__(self, ws, tab: str, session, base_url: str, agent, campaign):
        from campaigns.models import Disposition

        self.ws, self.tab = ws, tab
        self.session, self.base_url, self.agent, self.campaign = session, base_url, agent, campaign
        self.whole_desk: list[float] = []  # a tab's Save until its lower panels' frame too
        self.final, _ = Disposition.objects.get_or_create(
            campaign=campaign, name="Interested", defaults={"outcome": Disposition.Outcome.FINAL}
        )

    def _ended_call(self):
        """A lead on the desk and its call, connected 30 s and ended: the desk in wrap-up."""
        from datetime import timedelta

        from django.utils import timezone

        from agentdesk.services import lead_next_for_agent
        from calls.models import Call, CallState

        reset_desk(self.agent, presence="wrap_up")
        lead = lead_next_for_agent(agent=self.agent, campaign=self.campaign)
        if lead is None:
            raise SystemExit("the dial campaign ran out of leads")
        now = timezone.now()
        call = Call.objects.create(
            lead=lead,
            campaign=self.campaign,
            agent=self.agent,
            account=self.campaign.account,
            state=CallState.ENDED,
            state_changed_at=now,
            connected_at=now - timedelta(seconds=30),
            ended_at=now,
            number=lead.number,
        )
        settle(self.ws, lead)  # the agent presses Save on the desk the lease drew
        return call, lead

    def _save(self, call, headers: dict | None = None):
        return htmx_post(
            self.session,
            f"{self.base_url}/desk/dispose/",
            {"call": call.pk, "disposition": self.final.pk, "notes": "bench"},
            headers=headers,
        )

    def save_once(self) -> float:
        """A Save that names no tab (a script): the HTTP answer is the desk with the next lead."""
        call, lead = self._ended_call()
        started = time.perf_counter()
        answer = self._save(call)
        elapsed = time.perf_counter() - started
        shown = PREVIEW_RE.search(answer.text)
        if answer.status_code != 200 or not shown or shown.group(1) in ("", str(lead.pk)):
            raise SystemExit(f"Save did not show the next lead ({answer.status_code}): {answer.text[:300]}")
        return elapsed

    def save_in_tab_once(self) -> float:
        """A Save from a desk tab, as the browser sends it (``X-Desk-Tab``): an empty 204, then
        the tab's socket draws the desk; timed until the first frame showing the next lead."""
        call, lead = self._ended_call()
        started = time.perf_counter()
        answer = self._save(call, headers={"X-Desk-Tab": self.tab})
        if answer.status_code != 204:
            raise SystemExit(f"a tab's Save answered {answer.status_code}: {answer.text[:300]}")

        def next_lead_shown(frame: str) -> bool:
            shown = PREVIEW_RE.search(frame)
            return bool(shown) and shown.group(1) not in ("", str(lead.pk))

        frames = self.ws.recv_until(next_lead_shown, timeout=15)
        shown = time.perf_counter() - started
        if not any('id="desk-recent"' in frame for frame in frames):
            self.ws.recv_until(lambda frame: 'id="desk-recent"' in frame, timeout=15)
        self.whole_desk.append(time.perf_counter() - started)
        return shown

    def reread_once(self) -> float:
        started = time.perf_counter()
        answer = self.session.get(f"{self.base_url}/desk/state/", headers={"HX-Request": "true"}, timeout=15)
        elapsed = time.perf_counter() - started
        if answer.status_code != 200:
            raise SystemExit(f"the desk's re-read failed ({answer.status_code})")
        return elapsed


# -- driver ----------------------------------------------------------------------------------------


def alternate(
    n: int, first: Callable[[], float], second: Callable[[], float]
) -> tuple[list[float], list[float]]:
    """``n`` samples of each, interleaved (order flipped every other time) so drift hits both."""
    a, b = [], []
    for i in range(n):
        keepalive()
        if i % 2:
            b.append(second())
            a.append(first())
        else:
            a.append(first())
            b.append(second())
    return a, b


@contextlib.contextmanager
def phase(name: str):
    started = time.perf_counter()
    yield
    print(f"  {name}: {time.perf_counter() - started:.1f} s", flush=True)


def idle_probe(gap: float, repeats: int, probes: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """The first message after ``gap`` seconds of silence, for each path, then a warm one."""
    out: dict[str, list[float]] = {}
    for name, probe in probes.items():
        cold, warm = [], []
        for _ in range(repeats):
            keepalive()
            time.sleep(gap)
            cold.append(probe())
            warm.append(probe())
        out[name] = {
            "cold_ms": [round(s * 1000, 2) for s in cold],
            "warm_ms": [round(s * 1000, 2) for s in warm],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--iterations", type=int, default=None, help="samples per path (default 200; quick: 15)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: few iterations, small campaign, no idle probe"
    )
    parser.add_argument(
        "--leads", type=int, default=None, help="leads in the next-lead campaign (default 100000)"
    )
    parser.add_argument(
        "--idle-seconds", type=float, default=None, help="idle gap before a cold probe (default 6; 0 skips)"
    )
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    parser.add_argument("--json", type=Path, help="also write the JSON result here")
    args = parser.parse_args()
    iterations = args.iterations or (15 if args.quick else 200)
    leads = args.leads or (5000 if args.quick else 100_000)
    idle = args.idle_seconds if args.idle_seconds is not None else (0 if args.quick else 6)
    warmup = 2 if args.quick else 20
    if not args.database_url.startswith("postgres"):
        raise SystemExit("The benchmark measures the PostgreSQL path: pass a postgres:// --database-url.")

    run_started = time.perf_counter()
    print("Migrating ...", flush=True)
    # The worker imports this module as bench.live_bench (its tasks above, bound to the app).
    env = setup_django(args.database_url, args.redis_url, prefix=PREFIX, AGENTDESK_DEMO="1")
    work = Path(env.pop("WORK"))
    stack = Stack(work, env)
    os.environ.update(env)
    from django.conf import settings

    settings.EMULATOR_URL, settings.PUBLIC_BASE_URL = stack.emulator_url, stack.base_url
    print("Seeding ...", flush=True)
    data = seed(leads, stack.emulator_url)
    print("Starting the emulators, daphne and a Celery worker ...", flush=True)
    stack.start()
    sockets = []
    try:
        from campaigns.models import Lead

        agents = data["agents"]
        dial_session = login(stack.base_url, "agent1", "demo")
        event_session = login(stack.base_url, "agent2", "demo")
        htmx_post(dial_session, f"{stack.base_url}/desk/campaign/", {"campaign": data["dial"].pk})
        # The dial agent's socket is a desk tab: the tab's Save is answered through it.
        tab = uuid.uuid4().hex
        dial_ws, event_ws = (
            open_socket(stack.base_url, dial_session, tab),
            open_socket(stack.base_url, event_session),
        )
        sockets = [dial_ws, event_ws]
        SOCKETS.extend(sockets)
        event_lead = Lead.objects.filter(campaign=data["dial"]).order_by("-id").first()
        event = EventPath(event_ws, agents["agent2"], data["account"], event_lead)
        dial = DialPath(dial_ws, dial_session, stack.base_url, agents["agent1"], data["dial"])
        nxt = NextLead(agents["agent3"], data["big"])
        save = SaveAndNext(dial_ws, tab, dial_session, stack.base_url, agents["agent1"], data["dial"])

        print(f"Warming up ({warmup} of each) ...", flush=True)
        for _ in range(warmup):
            keepalive()
            event.event_once()
            event.raw_once()
            dial.dial_once(record=False)
            dial.task_once()
            dial.task_push_once()
            nxt.lease_once()
            nxt.select_once()
            save.save_once()
            save.save_in_tab_once()
            save.reread_once()
        save.whole_desk.clear()

        print(f"Measuring {iterations} iterations of each path ...", flush=True)
        with phase("event to screen"):
            ev, raw = alternate(iterations, event.event_once, event.raw_once)
        with phase("dial click"):
            dl, task = alternate(iterations, dial.dial_once, dial.task_once)
        with phase("task to frame"):
            task_push = []
            for _ in range(iterations):
                keepalive()
                task_push.append(dial.task_push_once())
        with phase("next lead"):
            lease, select = alternate(iterations, nxt.lease_once, nxt.select_once)
        with phase("next preview after Save"):
            saved, reread = alternate(iterations, save.save_once, save.reread_once)
            saved_in_tab = []
            for _ in range(iterations):
                keepalive()
                saved_in_tab.append(save.save_in_tab_once())
        platform_delays = dial.platform_delays(stack.emulator_url)
        worker_delays = dial.worker_delays()
        plans = nxt.explain()

        rows = [
            row("event to screen (apply_signal)", ev, "channel-layer round trip, same size", raw),
            row("dial click to frame (HTTP+Celery)", dl, "no-op Celery task round trip", task),
        ]
        if worker_delays:
            rows.append(
                row("dial click to place_call start", worker_delays, "no-op Celery task round trip", task)
            )
        if platform_delays:
            rows.append(
                row("dial click to platform request", platform_delays, "no-op Celery task round trip", task)
            )
        rows += [
            # The answer is a write, the task published and the desk rendered, with no Celery in
            # it: its floor is the same desk rendered with nothing written (the Save's floor).
            row("dial click HTTP answer", dial.http, "the desk's re-read (GET /desk/state/)", reread),
            row("Celery task to frame (push only)", task_push, "no-op Celery task round trip", task),
            row(f"next lead lease ({leads} leads)", lease, "indexed SELECT ... LIMIT 1", select),
            row("next preview after Save (HTTP)", saved, "the desk's re-read (GET /desk/state/)", reread),
            # What the agent sees: the browser's Save names its tab and the socket draws the desk.
            row(
                "next preview after Save (tab)", saved_in_tab, "the desk's re-read (GET /desk/state/)", reread
            ),
            # ... and until the lists below the lead (their own frame, right after) are drawn too.
            row(
                "whole desk after Save (tab)",
                save.whole_desk,
                "the desk's re-read (GET /desk/state/)",
                reread,
            ),
        ]
        idle_result = {}
        if idle > 0:
            print(f"Idle probes ({idle:g} s of silence before each cold sample) ...", flush=True)
            idle_result = idle_probe(
                idle,
                1,
                {
                    "raw group_send to the socket": event.raw_once,
                    "no-op Celery task round trip": dial.task_once,
                    "event to screen": event.event_once,
                    "dial click to frame": dial.dial_once,
                },
            )
    finally:
        for ws in sockets:
            ws.close()
        stack.stop()

    print()
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"iterations: {iterations} (after {warmup} warm-up), event frame {event.frame_size} bytes")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (1 min)")
    print()
    print_table(rows)
    if idle_result:
        print()
        print(f"first message after {idle:g} s idle (cold) vs the one right after it (warm), ms:")
        for name, got in idle_result.items():
            print(f"  {name:<32} cold {got['cold_ms']}  warm {got['warm_ms']}")
    result = {
        "benchmark": "live",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "iterations": iterations,
        "warmup": warmup,
        "leads": leads,
        "frame_bytes": event.frame_size,
        "metrics": rows,
        "idle_seconds": idle,
        "idle": idle_result,
        "plans": plans,
        "seconds": round(time.perf_counter() - run_started, 1),
        # Other work on the machine shows here first (the figures are only as quiet as this).
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(f"total {result['seconds']} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()

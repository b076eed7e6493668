"""What the load benchmarks (bench/load_bench.py) share: a stack of real processes (the emulators,
one or more daphne processes, one or more Celery dial workers) on PostgreSQL and Redis, a floor
of agents with sessions made directly in the database (no password hashing per desk), and two
small asyncio clients with no dependency beyond the standard library: a WebSocket desk (RFC 6455
text frames, masked, answering pings) and a keep-alive HTTP/1.1 connection. One event loop in
the bench process drives hundreds of them; a thread per client would cost more CPU than the
server being measured on this 2-core machine.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import secrets
import statistics
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

from benchdb import ensure_database
from celery import shared_task

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/agentdesk_loadbench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/12"
PREFIX = "loadbench"
# Ryng's timers run 1000x slow: no emulator callback lands during a run, the bench sends its own.
EMULATOR_TIME_SCALE = "1000"
STATE_RE = re.compile(r'id="desk-call"[^>]*data-state="([a-z_]+)"')

_redis_client = None


def redis_client():
    """One Redis client per process, on the settings' ``REDIS_URL``."""
    global _redis_client
    if _redis_client is None:
        import redis
        from django.conf import settings

        _redis_client = redis.Redis.from_url(settings.REDIS_URL)
    return _redis_client


@shared_task(name="loadbench.marker", ignore_result=True)
def marker(key: str) -> None:
    """The floor of a Celery hop (a worker imports this module): push the wall clock to ``key``,
    where the bench is blocked on it (bench/live_bench.py and bench/load_bench.py)."""
    redis_client().rpush(key, repr(time.time()))
    redis_client().expire(key, 120)


# -- statistics --------------------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]


def ms(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "n": len(samples),
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p99_ms": round(pct(samples, 0.99) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


# -- the stack ---------------------------------------------------------------------------------------


def setup_django(database_url: str, redis_url: str, prefix: str = PREFIX, **extra: str) -> dict[str, str]:
    """Settings for this process and every child (returned, plus ``WORK``, the run's temporary
    directory): the bench's own database (created, migrated), Redis database, channel and cache
    prefixes, var dir (its secret key shared by all); Celery tasks bound to the app."""
    if not database_url.startswith("postgres"):
        raise SystemExit("The benchmarks measure the PostgreSQL path: pass a postgres:// database URL.")
    sys.path.insert(0, str(ROOT))
    ensure_database(database_url)
    work = Path(tempfile.mkdtemp(prefix=f"agentdesk-{prefix}-"))
    env = {
        "DJANGO_SETTINGS_MODULE": "agentdesk.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AGENTDESK_VAR_DIR": str(work / "var"),
        "CHANNELS_PREFIX": prefix,
        "CACHE_PREFIX": prefix,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(ROOT), str(ROOT / "bench"), os.environ.get("PYTHONPATH", "")])
        ),
        **extra,
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from agentdesk.celery import app as celery_app

    celery_app.set_current()
    call_command("migrate", verbosity=0)
    env["WORK"] = str(work)
    return env


class Stack:
    """The emulators, ``webs`` daphne processes and ``workers`` Celery workers (dial,default)."""

    def __init__(self, env: dict[str, str], *, webs: int = 1, workers: int = 1):
        from tests.emulator_fixtures import free_port
        from tests.process_fixtures import BIN, ManagedProcess

        work = Path(env["WORK"])
        self.emulator_url = f"http://127.0.0.1:{free_port()}"
        self.web_urls = [f"http://127.0.0.1:{free_port()}" for _ in range(webs)]
        env = {
            **os.environ,
            **env,
            "EMULATOR_URL": self.emulator_url,
            "PUBLIC_BASE_URL": self.web_urls[0],
        }
        os.environ.update(EMULATOR_URL=self.emulator_url, PUBLIC_BASE_URL=self.web_urls[0])
        from django.conf import settings

        settings.EMULATOR_URL, settings.PUBLIC_BASE_URL = self.emulator_url, self.web_urls[0]
        logs = work / "logs"
        self.names = [f"{PREFIX}{n}-{os.getpid()}" for n in range(workers)]
        self.processes: dict[str, ManagedProcess] = {
            "emulators": ManagedProcess(
                "emulators",
                [sys.executable, "-m", "emulators", "--port", str(urlparse(self.emulator_url).port)],
                {**env, "EMULATOR_TIME_SCALE": EMULATOR_TIME_SCALE, "EMULATOR_LOG_LEVEL": "WARNING"},
                logs / "emulators.log",
            )
        }
        for n, url in enumerate(self.web_urls):
            self.processes[f"web{n}"] = ManagedProcess(
                f"web{n}",
                [
                    str(BIN / "daphne"),
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(urlparse(url).port),
                    "agentdesk.asgi:application",
                ],
                env,
                logs / f"web{n}.log",
            )
        for n, name in enumerate(self.names):
            self.processes[f"worker{n}"] = ManagedProcess(
                f"worker{n}",
                [
                    *(str(BIN / "celery"), "-A", "agentdesk", "worker", "-Q", "dial,default"),
                    *("-n", f"{name}@%h", "-c", "2", "--without-gossip", "--without-mingle"),
                    *("--include", "bench.loadkit", "--loglevel", "WARNING"),
                ],
                env,
                logs / f"worker{n}.log",
            )

    def start(self) -> Stack:
        from tests.emulator_fixtures import wait_for_http
        from tests.process_fixtures import wait_for_worker

        try:
            for proc in self.processes.values():
                proc.start()
            wait_for_http(f"{self.emulator_url}/_emulator/health", timeout=30)
            for url in self.web_urls:
                wait_for_http(f"{url}/login/", timeout=30)
            for name in self.names:
                wait_for_worker(name, timeout=30)
        except Exception:
            print(self.logs(), file=sys.stderr)
            self.stop()
            raise
        return self

    def web_pid(self, n: int = 0) -> int:
        return self.processes[f"web{n}"].process.pid

    def rss_mb(self, n: int = 0) -> float:
        """The daphne process's resident memory (VmRSS)."""
        for line in Path(f"/proc/{self.web_pid(n)}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the web processes have used so far: unlike wall time, it
        hardly moves with what else the machine runs."""
        total = 0.0
        for n in range(len(self.web_urls)):
            fields = Path(f"/proc/{self.web_pid(n)}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n{proc.log_tail()}" for name, proc in self.processes.items())

    def stop(self) -> None:
        import requests

        with contextlib.suppress(requests.RequestException):
            requests.post(f"{self.emulator_url}/_emulator/reset", timeout=5)
        for proc in self.processes.values():
            proc.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the floor ---------------------------------------------------------------------------------------


class Floor:
    """``agents`` agents (users ``loadbench<n>``, Ryng agent ids 1000+n) on one Ryng campaign of
    the bench's account, each Ready on it, with a database session and a CSRF secret."""

    def __init__(self, agents: int, emulator_url: str, leads: int = 0):
        from datetime import time as dtime

        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        from agentdesk.models import AGENTS_GROUP, Agent, Presence
        from calls.models import Call, CallState, Platform, PlatformIdentity, TelephonyAccount
        from campaigns.models import Campaign, Disposition, Lead

        User = get_user_model()
        account, _ = TelephonyAccount.objects.get_or_create(
            name=f"{PREFIX} Ryng", defaults={"platform": "ryng"}
        )
        account.base_url = f"{emulator_url}/rest-api/v1"
        account.credentials = {"token": "demo-ryng-token"}
        account.save()
        campaign, _ = Campaign.objects.get_or_create(
            name=f"{PREFIX} campaign",
            defaults={"account": account, "platform_campaign_id": "595", "attempt_cap": 3},
        )
        campaign.window_start, campaign.window_end = dtime(0, 0), dtime.max
        campaign.save(update_fields=["window_start", "window_end"])
        Disposition.objects.get_or_create(
            campaign=campaign,
            name="Interested",
            defaults={"outcome": Disposition.Outcome.FINAL, "position": 1},
        )
        group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
        names = [f"{PREFIX}{n}" for n in range(agents)]
        have = set(User.objects.filter(username__in=names).values_list("username", flat=True))
        User.objects.bulk_create([User(username=u, password="!") for u in names if u not in have])
        users = {u.username: u for u in User.objects.filter(username__in=names)}
        group.user_set.add(*users.values())
        have = set(Agent.objects.filter(user__in=users.values()).values_list("user_id", flat=True))
        Agent.objects.bulk_create([Agent(user=u) for u in users.values() if u.pk not in have])
        by_user = {a.user_id: a for a in Agent.objects.filter(user__in=users.values())}
        self.agents = [by_user[users[u].pk] for u in names]
        have = set(
            PlatformIdentity.objects.filter(agent__in=self.agents, platform=Platform.RYNG).values_list(
                "agent_id", flat=True
            )
        )
        PlatformIdentity.objects.bulk_create(
            [
                PlatformIdentity(
                    agent=a, platform=Platform.RYNG, ref=str(1000 + n), username=f"{PREFIX}{n}@ryng.example"
                )
                for n, a in enumerate(self.agents)
                if a.pk not in have
            ]
        )
        campaign.agents.add(*self.agents)
        # Whatever an earlier run left: no live call, no lease, Ready on the campaign.
        Call.objects.filter(agent__in=self.agents).exclude(state=CallState.DISPOSED).update(
            state=CallState.DISPOSED
        )
        Lead.objects.filter(campaign=campaign).exclude(lease_owner=None).update(
            lease_owner=None, lease_expires_at=None
        )
        Agent.objects.filter(pk__in=[a.pk for a in self.agents]).update(
            presence=Presence.READY, desk_campaign=campaign
        )
        self.account, self.campaign = account, campaign
        if leads:
            self.fill(leads)
        self.cookies = self._sessions()

    def fill(self, count: int) -> None:
        """At least ``count`` pending leads (the ones worked by an earlier run are set pending)."""
        from campaigns.models import Lead

        Lead.objects.filter(campaign=self.campaign).exclude(status=Lead.Status.PENDING).update(
            status=Lead.Status.PENDING, attempts=0, next_attempt_at=None
        )
        have = Lead.objects.filter(campaign=self.campaign).count()
        Lead.objects.bulk_create(
            [
                Lead(
                    campaign=self.campaign,
                    number=f"+1415{i:07d}",
                    raw_number=f"+1415{i:07d}",
                    name=f"Lead {i}",
                    custom_fields={"City": "San Francisco"},
                    timezone="America/Los_Angeles",
                    source=Lead.Source.SHEET,
                )
                for i in range(have, count)
            ],
            batch_size=5000,
        )

    def _sessions(self) -> list[str]:
        """A signed-in session per agent, written straight to the session table (what a login
        leaves behind), and a CSRF secret; returns each agent's Cookie header."""
        from datetime import timedelta

        from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore
        from django.contrib.sessions.models import Session
        from django.utils import timezone

        store = SessionStore()
        rows, cookies = [], []
        for agent in self.agents:
            key = secrets.token_hex(16)
            data = {
                SESSION_KEY: str(agent.user_id),
                BACKEND_SESSION_KEY: "agentdesk.roles.SignedInBackend",
                HASH_SESSION_KEY: agent.user.get_session_auth_hash(),
            }
            rows.append(
                Session(
                    session_key=key,
                    session_data=store.encode(data),
                    expire_date=timezone.now() + timedelta(hours=2),
                )
            )
            cookies.append(f"sessionid={key}; csrftoken={secrets.token_hex(16)}")
        Session.objects.bulk_create(rows, batch_size=2000)
        return cookies

    def new_calls(self, state: str = "dialing", per_agent: int = 1) -> list:
        """``per_agent`` fresh live calls per agent (earlier ones disposed), each with a Ryng call
        id, in agent order (call ``i`` is agent ``i % len(agents)``'s)."""
        from django.utils import timezone

        from calls.models import Call, CallState
        from campaigns.models import Lead

        Call.objects.filter(agent__in=self.agents).exclude(state=CallState.DISPOSED).update(
            state=CallState.DISPOSED
        )
        team = self.agents * per_agent
        self.fill(len(team))
        leads = list(Lead.objects.filter(campaign=self.campaign).order_by("id")[: len(team)])
        now = timezone.now()
        calls = Call.objects.bulk_create(
            [
                Call(
                    lead=lead,
                    campaign=self.campaign,
                    agent=agent,
                    account=self.account,
                    state=state,
                    state_changed_at=now,
                    dialed_at=now,
                    number=lead.number,
                )
                for agent, lead in zip(team, leads, strict=True)
            ],
            batch_size=2000,
        )
        for call in calls:
            call.platform_call_id = f"lb{call.pk}"
        Call.objects.bulk_update(calls, ["platform_call_id"], batch_size=2000)
        return calls


def callback_body(call_id: str, event: str) -> bytes:
    """A Ryng connect or terminal callback (the emulator's shape, seed 000)."""
    import json

    body = {"callID": call_id, "event": event, "callDirection": "outbound", "agentID": 1}
    if event == "agent-connected":
        body["callbackType"] = "connect"
    elif event == "customer-connected":
        body.update(callbackType="connect", callStarted="2026-12-06T10:00:05Z")
    else:
        body.update(
            callbackType="terminal",
            callStarted="2026-12-06T10:00:05Z",
            callEnded="2026-12-06T10:01:05Z",
            status="2",
            talktime=60,
        )
    return json.dumps(body).encode()


CALLBACK_STEPS = (
    ("agent-connected", "connect", "agent_connected"),
    ("customer-connected", "connect", "connected"),
    ("call-ended", "terminal", "ended"),
)


# -- asyncio clients ---------------------------------------------------------------------------------


class HTTP:
    """One keep-alive HTTP/1.1 connection (reopened when the server closes it)."""

    def __init__(self, base_url: str, cookie: str = ""):
        parsed = urlparse(base_url)
        self.host, self.port, self.cookie = parsed.hostname, parsed.port, cookie
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None):
        """(status, body) of one request."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            f"Content-Length: {len(body)}",
        ]
        if self.cookie:
            lines.append(f"Cookie: {self.cookie}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        fields = {}
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip().lower()] = v.strip()
        if "content-length" in fields:
            data = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")  # no trailers: the closing blank line
                    break
                data += (await self.reader.readexactly(size + 2))[:-2]
        else:
            data = await self.reader.read()
            fields["connection"] = "close"
        if fields.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Desk:
    """A desk's WebSocket (``/ws/desk/?tab=``). ``on_frame(desk, text, at)`` sees every frame
    with its ``perf_counter`` arrival time."""

    def __init__(self, index: int, base_url: str, cookie: str, on_frame: Callable | None = None):
        parsed = urlparse(base_url)
        self.index, self.host, self.port, self.cookie = index, parsed.hostname, parsed.port, cookie
        self.tab = secrets.token_hex(16)
        self.on_frame = on_frame
        self.frames = 0
        self.first = asyncio.get_running_loop().create_future()
        self.closed: str | None = None
        self.task = None

    async def open(self, timeout: float = 60) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write(
            "\r\n".join(
                [
                    f"GET /ws/desk/?tab={self.tab} HTTP/1.1",
                    f"Host: {self.host}:{self.port}",
                    "Upgrade: websocket",
                    "Connection: Upgrade",
                    f"Sec-WebSocket-Key: {key}",
                    "Sec-WebSocket-Version: 13",
                    f"Origin: http://{self.host}:{self.port}",
                    f"Cookie: {self.cookie}",
                    "",
                    "",
                ]
            ).encode()
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), timeout)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"desk {self.index}: handshake refused: {head[:200]!r}")
        self.task = asyncio.get_running_loop().create_task(self._read())
        # The whole desk comes first: the desk is up once it is in.
        await asyncio.wait_for(asyncio.shield(self.first), timeout)

    async def _read(self) -> None:
        message = b""
        try:
            while True:
                first, second = await self.reader.readexactly(2)
                opcode, length = first & 0x0F, second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", await self.reader.readexactly(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", await self.reader.readexactly(8))[0]
                payload = await self.reader.readexactly(length)
                if opcode == 0x8:
                    self.closed = f"closed by server {payload[:2].hex()}"
                    break
                if opcode == 0x9:
                    self._send(0xA, payload)
                    continue
                message += payload
                if first & 0x80:
                    at = time.perf_counter()
                    text, message = message.decode(), b""
                    self.frames += 1
                    if not self.first.done():
                        self.first.set_result(at)
                    elif self.on_frame is not None:
                        self.on_frame(self, text, at)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            self.closed = f"connection lost: {exc!r}"
        if not self.first.done():
            self.first.set_exception(RuntimeError(f"desk {self.index}: {self.closed}"))

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        header = (
            bytes([0x80 | opcode, 0x80 | n])
            if n < 126
            else bytes([0x80 | opcode, 0xFE]) + struct.pack(">H", n)
        )
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._send(0x8, struct.pack(">H", 1000))
            self.writer.close()
        if self.task is not None:
            self.task.cancel()


REOPENED = {"count": 0}


async def open_desks(
    floor: Floor,
    urls: list[str],
    on_frame: Callable | None,
    *,
    start: int = 0,
    count: int | None = None,
    at_once: int = 10,
) -> list[Desk]:
    """Desks for agents ``start..start+count``, spread round robin over ``urls``, ``at_once`` at a
    time (each connect renders the whole desk). daphne drops a socket its consumer has not
    accepted within 5 s (``--websocket_connect_timeout``): a desk it drops tries again after a
    second, as the desk's socket does, up to 3 times (counted in ``REOPENED``)."""
    count = len(floor.agents) - start if count is None else count
    desks = [
        Desk(start + i, urls[(start + i) % len(urls)], floor.cookies[start + i], on_frame)
        for i in range(count)
    ]
    gate = asyncio.Semaphore(at_once)

    async def one(desk: Desk) -> None:
        for attempt in range(4):
            try:
                async with gate:
                    await desk.open()
                return
            except (ConnectionError, RuntimeError, asyncio.IncompleteReadError, TimeoutError):
                if attempt == 3:
                    raise
                REOPENED["count"] += 1
                desk.first = asyncio.get_running_loop().create_future()
                await asyncio.sleep(1)

    await asyncio.gather(*(one(d) for d in desks))
    return desks


async def paced(rate: float, count: int, send: Callable[[int], object]) -> float:
    """Start ``send(i)`` (a coroutine) ``count`` times at ``rate`` per second, open loop (a late
    answer never delays the next start); returns the seconds it took until all answered."""
    started = time.perf_counter()
    tasks = []
    for i in range(count):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(send(i)))
    await asyncio.gather(*tasks)
    return time.perf_counter() - started

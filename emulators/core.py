"""The emulator process: one threaded HTTP server, a router, a clock and the control API.

Each platform is a :class:`Platform` that registers its routes on the shared :class:`Router` and
keeps its own state behind its own lock. Everything a test needs to script or inspect lives under
``/_emulator/`` (see ``docs/emulators.md``).

Threads, not asyncio: long polls simply block their request thread on a ``threading.Condition``,
and ``ThreadingHTTPServer`` gives every connection its own thread.
"""

from __future__ import annotations

import email.parser
import email.policy
import http.cookies
import json
import logging
import os
import re
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests

log = logging.getLogger("emulators")


def _env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


@dataclass
class EmulatorConfig:
    """Every knob of the emulators. Defaults are the demo's; each one has an environment variable."""

    # One minute of platform time lasts ``60 * time_scale`` real seconds (retry schedules, rings).
    time_scale: float = 1.0
    ryng_token: str = "demo-ryng-token"
    huawei_agents: list[str] = field(default_factory=lambda: [str(n) for n in range(101, 106)])
    huawei_password: str = "demo"
    huawei_guid_rotate_seconds: float = 60.0
    huawei_guid_grace_seconds: float = 120.0
    huawei_poll_hold_seconds: float = 10.0
    huawei_idle_signout_seconds: float = 120.0
    genesys_users: list[str] = field(default_factory=lambda: [f"agent{n}" for n in range(1, 6)])
    genesys_password: str = "demo"
    genesys_csrf: bool = True
    cometd_timeout_ms: int = 30000
    cometd_interval_ms: int = 0
    cometd_max_interval_ms: int = 10000

    @classmethod
    def from_env(cls) -> EmulatorConfig:
        env = os.environ.get
        default = cls()
        return cls(
            time_scale=float(env("EMULATOR_TIME_SCALE", default.time_scale)),
            ryng_token=env("EMULATOR_RYNG_TOKEN", default.ryng_token),
            huawei_agents=_env_list("EMULATOR_HUAWEI_AGENTS", ",".join(default.huawei_agents)),
            huawei_password=env("EMULATOR_HUAWEI_PASSWORD", default.huawei_password),
            huawei_guid_rotate_seconds=float(
                env("EMULATOR_HUAWEI_GUID_ROTATE_SECONDS", default.huawei_guid_rotate_seconds)
            ),
            huawei_guid_grace_seconds=float(
                env("EMULATOR_HUAWEI_GUID_GRACE_SECONDS", default.huawei_guid_grace_seconds)
            ),
            huawei_poll_hold_seconds=float(
                env("EMULATOR_HUAWEI_POLL_HOLD_SECONDS", default.huawei_poll_hold_seconds)
            ),
            huawei_idle_signout_seconds=float(
                env("EMULATOR_HUAWEI_IDLE_SIGNOUT_SECONDS", default.huawei_idle_signout_seconds)
            ),
            genesys_users=_env_list("EMULATOR_GENESYS_USERS", ",".join(default.genesys_users)),
            genesys_password=env("EMULATOR_GENESYS_PASSWORD", default.genesys_password),
            genesys_csrf=env("EMULATOR_GENESYS_CSRF", "1" if default.genesys_csrf else "0")
            not in ("0", "false", "no", "off"),
            cometd_timeout_ms=int(env("EMULATOR_COMETD_TIMEOUT_MS", default.cometd_timeout_ms)),
            cometd_interval_ms=int(env("EMULATOR_COMETD_INTERVAL_MS", default.cometd_interval_ms)),
            cometd_max_interval_ms=int(
                env("EMULATOR_COMETD_MAX_INTERVAL_MS", default.cometd_max_interval_ms)
            ),
        )

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise BadRequest(f"unknown config key {key!r}")
            setattr(self, key, type(getattr(self, key))(value))


class Clock:
    """Platform time. ``sleep(60)`` lasts ``60 * config.time_scale`` real seconds."""

    def __init__(self, config: EmulatorConfig):
        self.config = config

    def real(self, seconds: float) -> float:
        return max(0.0, seconds * self.config.time_scale)

    def sleep(self, seconds: float) -> None:
        time.sleep(self.real(seconds))

    def later(self, seconds: float, fn: Callable[..., Any], *args: Any) -> threading.Timer:
        timer = threading.Timer(self.real(seconds), _logged(fn), args=args)
        timer.daemon = True
        timer.start()
        return timer


def _logged(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a background step must never kill the process silently
            log.exception("emulator background step %s failed", getattr(fn, "__name__", fn))

    return run


class BadRequest(Exception):
    """Raised by helpers on unparseable input; platforms usually answer in their own envelope."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    client: str = ""

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name, default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self, default: Any = None) -> Any:
        """The body as JSON; ``default`` when empty; :class:`BadRequest` when malformed."""
        if not self.body.strip():
            return default
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BadRequest(f"malformed JSON body: {exc}") from exc

    def param(self, name: str) -> Any:
        """A parameter from the query string, else from a JSON object body (Ryng accepts both)."""
        value = self.arg(name)
        if value is not None:
            return value
        try:
            body = self.json({})
        except BadRequest:
            return None
        return body.get(name) if isinstance(body, dict) else None

    @property
    def cookies(self) -> dict[str, str]:
        jar = http.cookies.SimpleCookie()
        try:
            jar.load(self.header("Cookie"))
        except http.cookies.CookieError:
            return {}
        return {key: morsel.value for key, morsel in jar.items()}

    def form(self) -> tuple[dict[str, list[str]], dict[str, tuple[str, bytes]]]:
        """Parse ``multipart/form-data`` or urlencoded bodies: (fields, files by name)."""
        ctype = self.header("Content-Type")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return urllib.parse.parse_qs(self.body.decode("utf-8", "replace")), {}
        if not ctype.startswith("multipart/form-data"):
            raise BadRequest("expected multipart/form-data")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + self.body
        )
        if not message.is_multipart():
            raise BadRequest("malformed multipart body")
        fields: dict[str, list[str]] = {}
        files: dict[str, tuple[str, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True) or b""
            filename = part.get_filename()
            if filename is not None:
                files[name] = (filename, payload)
            else:
                fields.setdefault(name, []).append(payload.decode("utf-8", "replace"))
        return fields, files


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=UTF-8"


def json_response(data: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status=status, body=json.dumps(data).encode(), headers=list(headers or []))


Handler = Callable[..., Response]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    platform: str


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, pattern: str, handler: Handler, platform: str = "control") -> None:
        self.routes.append(Route(method.upper(), re.compile(f"^{pattern}$"), handler, platform))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, path params, whether the path exists under another method)."""
        path_exists = False
        for route in self.routes:
            found = route.pattern.match(path)
            if found:
                if route.method == method:
                    return route, found.groupdict(), True
                path_exists = True
        return None, {}, path_exists


@dataclass
class Outcome:
    """What happens to a call: scripted by tests through ``/_emulator/outcomes``.

    result: ``answer`` | ``no_answer`` | ``busy`` | ``fail`` | ``error`` (the dial request itself
    answers 500). ``agent_ring_seconds`` is the agent leg, ``ring_seconds`` the customer leg,
    ``talk_seconds`` how long the customer stays before hanging up (``None``: until the agent
    ends the call). All in platform seconds, scaled by the clock.
    """

    result: str = "answer"
    agent_ring_seconds: float = 1.0
    ring_seconds: float = 2.0
    talk_seconds: float | None = None

    RESULTS = ("answer", "no_answer", "busy", "fail", "error")

    @classmethod
    def parse(cls, data: dict[str, Any]) -> Outcome:
        outcome = cls()
        for key in ("result", "agent_ring_seconds", "ring_seconds", "talk_seconds"):
            if key in data:
                setattr(outcome, key, data[key])
        if outcome.result not in cls.RESULTS:
            raise BadRequest(f"result must be one of {', '.join(cls.RESULTS)}")
        return outcome


class Outcomes:
    """Scripted outcomes: per number (sticky) or the next N calls of a platform (consumed)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.by_number: dict[str, Outcome] = {}
            self.queued: dict[str, list[Outcome]] = {}

    def script(self, data: dict[str, Any]) -> Outcome:
        outcome = Outcome.parse(data)
        with self._lock:
            if data.get("number"):
                self.by_number[_digits(str(data["number"]))] = outcome
            else:
                self.queued.setdefault(data.get("platform", "*"), []).extend(
                    [outcome] * int(data.get("count", 1))
                )
        return outcome

    def take(self, platform: str, number: str) -> Outcome:
        with self._lock:
            for key in (platform, "*"):
                if self.queued.get(key):
                    return self.queued[key].pop(0)
            return self.by_number.get(_digits(number), Outcome())


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


@dataclass
class Fault:
    """Make matching requests misbehave: ``kind`` ``500`` answers 500, ``slow`` sleeps first."""

    kind: str
    platform: str = "*"
    path: str = ""  # a prefix of the path; empty matches all
    seconds: float = 5.0  # real seconds, not scaled: it exists to trip client timeouts
    count: int = 1
    skip: int = 0  # matching requests let through first: a fault in the middle of a series


@dataclass
class CallbackRecord:
    url: str
    label: str
    body: Any
    attempt: int
    status: int | None = None
    error: str = ""
    at: float = field(default_factory=time.time)
    dropped: bool = False
    duplicate: bool = False


class Platform:
    """A platform emulator: subclasses set ``name`` and ``prefix`` and register their routes."""

    name = ""
    prefix = ""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.config = emulator.config
        self.clock = emulator.clock
        self.lock = threading.RLock()

    def register(self, router: Router) -> None:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError

    def route(self, router: Router, method: str, pattern: str, handler: Handler) -> None:
        router.add(method, pattern, handler, self.name)


class Emulator:
    """Shared state: the config, clock, request and callback logs, faults and scripted outcomes."""

    def __init__(self, config: EmulatorConfig | None = None, platforms: list[type[Platform]] | None = None):
        self.config = config or EmulatorConfig.from_env()
        self.clock = Clock(self.config)
        self.router = Router()
        self.outcomes = Outcomes()
        self._lock = threading.Lock()
        self.requests_log: list[dict[str, Any]] = []
        self.callbacks_log: list[CallbackRecord] = []
        self.faults: list[Fault] = []
        self.callback_faults: list[dict[str, Any]] = []
        self._register_control()
        self.platforms: dict[str, Platform] = {}
        for platform_cls in platforms if platforms is not None else default_platforms():
            platform = platform_cls(self)
            platform.register(self.router)
            self.platforms[platform.name] = platform

    # -- control API -------------------------------------------------------------------------
    def _register_control(self) -> None:
        add = self.router.add
        add(
            "GET",
            r"/_emulator/health",
            lambda req: json_response(
                {"status": "ok", "platforms": sorted(self.platforms), "time_scale": self.config.time_scale}
            ),
        )
        add("POST", r"/_emulator/reset", self._reset)
        add("GET", r"/_emulator/requests", self._list_requests)
        add("GET", r"/_emulator/callbacks", self._list_callbacks)
        add("POST", r"/_emulator/faults", self._add_fault)
        add("POST", r"/_emulator/callback-faults", self._add_callback_fault)
        add("POST", r"/_emulator/outcomes", self._add_outcome)
        add("GET", r"/_emulator/config", lambda req: json_response(_public_config(self.config)))
        add("POST", r"/_emulator/config", self._set_config)

    def _reset(self, req: Request) -> Response:
        self.reset()
        return json_response({"reset": True})

    def reset(self) -> None:
        with self._lock:
            self.requests_log.clear()
            self.callbacks_log.clear()
            self.faults.clear()
            self.callback_faults.clear()
        self.outcomes.reset()
        for platform in self.platforms.values():
            platform.reset()

    def _list_requests(self, req: Request) -> Response:
        platform, path = req.arg("platform"), req.arg("path", "")
        with self._lock:
            rows = [
                row
                for row in self.requests_log
                if (platform is None or row["platform"] == platform) and row["path"].startswith(path)
            ]
        return json_response(rows)

    def _list_callbacks(self, req: Request) -> Response:
        label = req.arg("label")
        with self._lock:
            rows = [asdict(r) for r in self.callbacks_log if label is None or r.label == label]
        return json_response(rows)

    def _add_fault(self, req: Request) -> Response:
        data = req.json({}) or {}
        if data.get("kind") not in ("500", "slow"):
            return json_response({"error": "kind must be '500' or 'slow'"}, 400)
        fault = Fault(
            kind=data["kind"],
            platform=data.get("platform", "*"),
            path=data.get("path", ""),
            seconds=float(data.get("seconds", 5.0)),
            count=int(data.get("count", 1)),
            skip=int(data.get("skip", 0)),
        )
        with self._lock:
            self.faults.append(fault)
        return json_response(asdict(fault))

    def _add_callback_fault(self, req: Request) -> Response:
        data = req.json({}) or {}
        if data.get("kind") not in ("duplicate", "drop", "fail"):
            return json_response({"error": "kind must be 'duplicate', 'drop' or 'fail'"}, 400)
        fault = {"kind": data["kind"], "label": data.get("label", "*"), "count": int(data.get("count", 1))}
        with self._lock:
            self.callback_faults.append(fault)
        return json_response(fault)

    def _add_outcome(self, req: Request) -> Response:
        return json_response(asdict(self.outcomes.script(req.json({}) or {})))

    def _set_config(self, req: Request) -> Response:
        self.config.update(req.json({}) or {})
        return json_response(_public_config(self.config))

    # -- helpers for platforms ---------------------------------------------------------------
    def record(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.requests_log.append(row)

    def take_fault(self, platform: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.platform in ("*", platform) and path.startswith(fault.path):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.count -= 1
                    if fault.count <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _take_callback_fault(self, label: str) -> str | None:
        with self._lock:
            for fault in self.callback_faults:
                if fault["label"] in ("*", label):
                    fault["count"] -= 1
                    if fault["count"] <= 0:
                        self.callback_faults.remove(fault)
                    return fault["kind"]
        return None

    def send_callback(self, url: str, body: Any, *, label: str, retries: int, interval: float = 60.0) -> None:
        """POST ``body`` to ``url`` in the background; on a non-200 answer retry ``retries`` more
        times every ``interval`` platform seconds. Every attempt and its answer is recorded.
        A scripted callback fault may drop it, duplicate it, or make the first attempt count as
        failed (``fail``) to exercise the retry schedule."""
        if not url:
            return
        threading.Thread(
            target=_logged(self._deliver), args=(url, body, label, retries, interval), daemon=True
        ).start()

    def _deliver(self, url: str, body: Any, label: str, retries: int, interval: float) -> None:
        fault = self._take_callback_fault(label)
        if fault == "drop":
            with self._lock:
                self.callbacks_log.append(CallbackRecord(url, label, body, 0, dropped=True))
            return
        for attempt in range(1, retries + 2):
            record = CallbackRecord(url, label, body, attempt)
            if fault == "fail" and attempt == 1:
                record.error = "scripted failure"
            else:
                try:
                    answer = requests.post(url, json=body, timeout=(3.05, 10))
                    record.status = answer.status_code
                except requests.RequestException as exc:
                    record.error = str(exc)
            with self._lock:
                self.callbacks_log.append(record)
            if record.status == 200:
                break
            if attempt <= retries:
                self.clock.sleep(interval)
        if fault == "duplicate":
            record = CallbackRecord(url, label, body, 1, duplicate=True)
            try:
                record.status = requests.post(url, json=body, timeout=(3.05, 10)).status_code
            except requests.RequestException as exc:
                record.error = str(exc)
            with self._lock:
                self.callbacks_log.append(record)

    # -- serving -----------------------------------------------------------------------------
    def make_server(self, host: str = "127.0.0.1", port: int = 8100) -> ThreadingHTTPServer:
        emulator = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "AgentDeskEmulator/1.0"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), format % args)

            def _handle(self) -> None:
                emulator.dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        server = ThreadingHTTPServer((host, port), RequestHandler)
        server.daemon_threads = True
        return server

    def dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        body = _read_body(handler)
        req = Request(
            method=handler.command,
            path=parsed.path,
            query=urllib.parse.parse_qs(parsed.query, keep_blank_values=True),
            headers=handler.headers,
            body=body,
            client=handler.client_address[0],
        )
        route, params, path_exists = self.router.match(req.method, req.path)
        platform = route.platform if route else "unknown"
        fault = self.take_fault(platform, req.path) if route and platform != "control" else None
        try:
            if fault and fault.kind == "slow":
                time.sleep(fault.seconds)
            if fault and fault.kind == "500":
                response = json_response({"error": True, "message": "Emulated internal error"}, 500)
            elif route is None:
                response = json_response(
                    {"error": "not found" if not path_exists else "method not allowed"},
                    405 if path_exists else 404,
                )
            else:
                response = route.handler(req, **params)
        except BadRequest as exc:
            response = json_response({"error": str(exc)}, 400)
        except Exception:
            log.error("emulator handler failed for %s %s\n%s", req.method, req.path, traceback.format_exc())
            response = json_response({"error": "emulator internal error"}, 500)
        if platform != "control":
            self.record(
                {
                    "platform": platform,
                    "method": req.method,
                    "path": req.path,
                    "query": req.query,
                    "headers": dict(req.headers.items()),
                    "body": body.decode("utf-8", "replace"),
                    "status": response.status,
                    "response": response.body.decode("utf-8", "replace"),
                    "at": time.time(),
                }
            )
        try:
            handler.send_response(response.status)
            handler.send_header("Content-Type", response.content_type)
            handler.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            log.debug("client went away before the answer to %s %s", req.method, req.path)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked transfer coding (Node's http client, as used
    by the CometD JavaScript client, sends POST bodies chunked)."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()  # the CRLF after each chunk
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


def _public_config(config: EmulatorConfig) -> dict[str, Any]:
    return asdict(config)


def default_platforms() -> list[type[Platform]]:
    """The platform classes that exist; a platform module that is not written yet is skipped."""
    import importlib

    found = []
    for module_name, class_name in (
        ("emulators.ryng", "RyngEmulator"),
        ("emulators.huawei", "HuaweiEmulator"),
        ("emulators.genesys", "GenesysEmulator"),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        found.append(getattr(module, class_name))
    return found


def serve_in_thread(emulator: Emulator | None = None, host: str = "127.0.0.1", port: int = 0):
    """Start an emulator on a background thread (for tests); returns (emulator, server, base_url)."""
    emulator = emulator or Emulator()
    server = emulator.make_server(host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return emulator, server, f"http://{host}:{server.server_address[1]}"

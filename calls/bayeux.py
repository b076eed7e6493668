"""A small synchronous Bayeux 1.0 long-polling client on ``requests``.

Why our own: ``aiocometd`` is unmaintained and fails on Python 3.10+ (``shared/STACK-NOTES.md``),
and GWS needs the CometD requests to share the REST session's cookies (``JSESSIONID``), Basic
auth and CSRF header (``shared/telephony.md``, "CometD"). So the client takes the adapter's
:class:`requests.Session` and a callable that returns extra headers for each request.

Protocol (https://docs.cometd.org/current/reference/#_bayeux):

1. ``/meta/handshake`` -> ``clientId`` and ``advice``;
2. ``/meta/subscribe`` to each channel;
3. ``/meta/connect`` in a loop; the server holds it up to ``advice.timeout`` and answers with any
   queued data messages. The read timeout is always ``advice.timeout`` plus a network allowance;
4. ``advice.reconnect``: ``retry`` -> connect again after ``advice.interval``; ``handshake`` (or the
   error ``402::Unknown client``) -> the server forgot us: handshake, subscribe again and call
   ``on_rehandshake`` so the owner re-reads state over REST (events in the gap are lost);
   ``none`` -> stop.

Failures (transport errors, HTTP errors, handshakes that keep being refused or repeating without a
successful connect between them) back off exponentially with jitter, capped. Every reconnect
is logged. :meth:`BayeuxClient.stop` ends the loop from any thread.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import requests

log = logging.getLogger("calls.bayeux")

UNKNOWN_CLIENT = "402"


class BayeuxError(Exception):
    """A Bayeux request failed (transport, HTTP status, or ``successful: false``)."""

    def __init__(self, message: str, *, http_status: int | None = None, error: str = ""):
        super().__init__(message)
        self.http_status = http_status
        self.error = error


class BayeuxClient:
    """One Bayeux session. Not thread-safe except :meth:`stop`; run :meth:`run` in one thread.

    ``on_message(message)`` gets every data message (the whole Bayeux message: ``channel``,
    ``data``, maybe ``id``). ``on_rehandshake()`` runs after a *re*-handshake and re-subscribe, not
    after the first one. ``headers()`` is called before each request (the GWS adapter returns its
    current CSRF header there). ``on_http_error(response)`` is told about a 401/403 answer before
    the client backs off and retries (the adapter refreshes its CSRF token or signs in again).
    Callback exceptions are logged and never end the loop.
    """

    def __init__(
        self,
        url: str,
        *,
        channels: Sequence[str],
        on_message: Callable[[dict[str, Any]], None],
        session: requests.Session | None = None,
        on_rehandshake: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
        headers: Callable[[], Mapping[str, str]] | None = None,
        on_http_error: Callable[[requests.Response], None] | None = None,
        connect_timeout: float = 3.05,
        network_delay: float = 10.0,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        name: str = "bayeux",
    ):
        self.url = url
        self.channels = list(channels)
        self.on_message = on_message
        self.on_rehandshake = on_rehandshake
        self.on_subscribed = on_subscribed
        self.session = session or requests.Session()
        self._headers = headers
        self.on_http_error = on_http_error
        self.connect_timeout = connect_timeout
        self.network_delay = network_delay
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.name = name
        self.client_id: str | None = None
        self.advice: dict[str, Any] = {"reconnect": "retry", "interval": 0, "timeout": 30000}
        self.handshakes = 0  # successful handshakes, the first included
        self.failures = 0  # consecutive failures, reset by a successful connect
        self._ids = itertools.count(1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- one request ------------------------------------------------------------------------
    def _send(
        self, messages: list[dict[str, Any]], *, read_timeout: float | None = None
    ) -> list[dict[str, Any]]:
        for message in messages:
            message.setdefault("id", str(next(self._ids)))
        headers = {"Content-Type": "application/json;charset=UTF-8"}
        if self._headers is not None:
            headers.update(self._headers())
        timeout = (self.connect_timeout, read_timeout or self.network_delay)
        try:
            response = self.session.post(self.url, json=messages, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            raise BayeuxError(f"transport failure: {type(exc).__name__}") from exc
        if response.status_code != 200:
            if response.status_code in (401, 403) and self.on_http_error is not None:
                self._safely(self.on_http_error, response)
            raise BayeuxError(f"HTTP {response.status_code}", http_status=response.status_code)
        try:
            replies = response.json()
        except ValueError as exc:
            raise BayeuxError("unreadable answer") from exc
        if isinstance(replies, dict):
            replies = [replies]
        if not isinstance(replies, list):
            raise BayeuxError("answer is not a list of messages")
        return [r for r in replies if isinstance(r, dict)]

    def _meta(self, replies: Iterable[dict[str, Any]], channel: str) -> dict[str, Any]:
        """Dispatch data messages; return the reply on ``channel`` (and remember its advice)."""
        found: dict[str, Any] | None = None
        for reply in replies:
            reply_channel = str(reply.get("channel") or "")
            if reply_channel.startswith("/meta/"):
                if reply_channel == channel and found is None:
                    found = reply
                continue
            self._safely(self.on_message, reply)
        if found is None:
            raise BayeuxError(f"no {channel} reply")
        if isinstance(found.get("advice"), dict):
            self.advice = {**self.advice, **found["advice"]}
        return found

    # -- protocol steps ---------------------------------------------------------------------
    def handshake(self) -> None:
        replies = self._send(
            [{"channel": "/meta/handshake", "version": "1.0", "supportedConnectionTypes": ["long-polling"]}]
        )
        reply = self._meta(replies, "/meta/handshake")
        if not reply.get("successful") or not reply.get("clientId"):
            raise BayeuxError(
                f"handshake refused: {reply.get('error', '')}", error=str(reply.get("error", ""))
            )
        self.client_id = str(reply["clientId"])
        self.handshakes += 1

    def subscribe(self, channels: Sequence[str] | None = None) -> None:
        wanted = list(channels) if channels is not None else self.channels
        replies = self._send(
            [{"channel": "/meta/subscribe", "clientId": self.client_id, "subscription": c} for c in wanted]
        )
        for reply in replies:
            if reply.get("channel") == "/meta/subscribe" and not reply.get("successful"):
                error = str(reply.get("error", ""))
                if error.startswith(UNKNOWN_CLIENT):
                    self.client_id = None
                raise BayeuxError(f"subscribe {reply.get('subscription')} refused: {error}", error=error)
        self._meta(replies, "/meta/subscribe")

    def connect(self) -> dict[str, Any]:
        """One ``/meta/connect``: dispatches the data messages and returns the connect reply."""
        timeout_s = float(self.advice.get("timeout", 30000)) / 1000.0
        replies = self._send(
            [{"channel": "/meta/connect", "clientId": self.client_id, "connectionType": "long-polling"}],
            read_timeout=timeout_s + self.network_delay,
        )
        return self._meta(replies, "/meta/connect")

    def disconnect(self) -> None:
        """Tell the server we leave (best effort, short timeout)."""
        if self.client_id is None:
            return
        client_id, self.client_id = self.client_id, None
        try:
            self._send([{"channel": "/meta/disconnect", "clientId": client_id}], read_timeout=3.0)
        except BayeuxError as exc:
            log.info("%s: disconnect failed (%s); the server will expire the client", self.name, exc)

    # -- the loop ---------------------------------------------------------------------------
    def start(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float | None = None) -> None:
        """End the loop (after the connect in flight returns) and disconnect."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread() and timeout:
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Handshake, subscribe and connect until :meth:`stop` or ``advice.reconnect == none``."""
        try:
            while not self._stop.is_set():
                try:
                    if self.client_id is None:
                        self._establish()
                        continue
                    reply = self.connect()
                except BayeuxError as exc:
                    self._fail(exc)
                    continue
                if not self._follow(reply):
                    break
        finally:
            self.disconnect()

    def _establish(self) -> None:
        again = self.handshakes > 0
        if again:
            log.warning("%s: re-handshaking (the server forgot client %s)", self.name, self.client_id or "-")
        self.handshake()
        self.subscribe()
        log.info(
            "%s: handshake %d done, client %s subscribed to %s",
            self.name,
            self.handshakes,
            self.client_id,
            self.channels,
        )
        if self.on_subscribed is not None:
            self._safely(self.on_subscribed)
        if again and self.on_rehandshake is not None:
            self._safely(self.on_rehandshake)

    def _follow(self, reply: dict[str, Any]) -> bool:
        """Act on a connect reply's advice; ``False`` means stop."""
        reconnect = str(self.advice.get("reconnect", "retry"))
        error = str(reply.get("error", ""))
        if reply.get("successful"):
            self.failures = 0
        if reconnect == "none":
            log.warning("%s: server advised reconnect=none; stopping", self.name)
            self.client_id = None  # nothing to disconnect: the server said we are done
            return False
        if reconnect == "handshake" or error.startswith(UNKNOWN_CLIENT) or not reply.get("successful"):
            log.warning(
                "%s: connect answered %s (reconnect=%s); will handshake again",
                self.name,
                error or "unsuccessful",
                reconnect,
            )
            self.client_id = None
            self.advice["reconnect"] = "retry"
            # Back off only when handshakes repeat without a successful connect in between.
            if self.failures:
                self._wait(self._backoff())
            self.failures += 1
            return True
        interval = float(self.advice.get("interval", 0) or 0) / 1000.0
        if interval > 0:
            self._wait(interval)
        return True

    def _fail(self, exc: BayeuxError) -> None:
        self.failures += 1
        if exc.error.startswith(UNKNOWN_CLIENT):
            self.client_id = None
        delay = self._backoff()
        log.warning("%s: %s; retrying in %.2fs (failure %d)", self.name, exc, delay, self.failures)
        self._wait(delay)

    def _backoff(self) -> float:
        """Exponential backoff with jitter: uniform in [0.5, 1] x min(max, base * 2^(n-1)), so
        clients dropped together (a server restart) do not handshake in lockstep."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(0, self.failures - 1)))
        return ceiling * random.uniform(0.5, 1.0)

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _safely(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("%s: callback %s failed", self.name, getattr(fn, "__name__", fn))

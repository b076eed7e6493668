"""A small, reusable Bayeux 1.0 server with the long-polling transport only.

It knows nothing about HTTP or authentication: a platform (``emulators/genesys.py``) authenticates
the request, decodes the JSON array and calls :meth:`BayeuxServer.handle` with the messages and
the *owner* (the authenticated user). :meth:`BayeuxServer.publish` queues a data message for every
client of an owner whose subscriptions match the channel.

What it implements (Bayeux 1.0, https://docs.cometd.org/current/reference/#_bayeux):

- ``/meta/handshake``: version ``1.0``; ``supportedConnectionTypes`` must include
  ``long-polling`` (otherwise ``301::Connection type not supported``). The answer carries the
  ``clientId`` and ``advice`` ``{reconnect: "retry", interval, timeout}``.
- ``/meta/subscribe`` and ``/meta/unsubscribe``: ``subscription`` as one channel or a list; the
  wildcards ``/a/*`` (one segment) and ``/a/**`` (any depth). ``/meta/**`` cannot be subscribed.
- ``/meta/connect``: held up to ``advice.timeout`` when nothing is queued, answered at once when
  messages are queued (the queued data messages come first in the same answer, then the connect
  reply). As the CometD server does, the *first* connect after a handshake is answered at once so
  the client learns the connection is up. A newer connect from the same client releases a held
  one. Every connect reply carries ``advice``.
- ``/meta/disconnect``: forgets the client (a held connect returns with ``reconnect: "none"``).
- A client that sends no connect for ``max_interval`` (real milliseconds) after its last connect
  answer expires, like CometD's ``maxInterval``; so does every client on :meth:`drop_clients`.
  Any message from an unknown or expired client gets
  ``{"successful": false, "error": "402::Unknown client", "advice": {"reconnect": "handshake"}}``.
- Message ``id`` is echoed on every reply; ``ext`` is accepted and ignored; a batch of several
  messages in one POST is answered in one array; clients may not publish (``403::Publish denied``):
  GWS notifications flow from server to client only.
- Every delivered data message gets a server-unique ``id`` (CometD servers may set one), which
  lets a consumer tell a redelivery from a new event with the same content.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

LONG_POLLING = "long-polling"


@dataclass
class BayeuxClientState:
    """One handshaken client on the server side."""

    client_id: str
    owner: str
    subscriptions: set[str] = field(default_factory=set)
    queue: list[dict[str, Any]] = field(default_factory=list)
    last_seen: float = field(default_factory=time.monotonic)
    connects: int = 0  # connect requests served so far
    held: int = 0  # connect requests currently held
    generation: int = 0  # bumped by each new connect so an older held one returns
    disconnected: bool = False  # left by /meta/disconnect (told to stop), not expired


def channel_matches(pattern: str, channel: str) -> bool:
    """Bayeux channel globbing: ``/a/*`` matches ``/a/b`` only, ``/a/**`` also ``/a/b/c``."""
    if pattern == channel:
        return True
    if pattern.endswith("/**"):
        return channel.startswith(pattern[:-2]) and len(channel) > len(pattern) - 2
    if pattern.endswith("/*"):
        head = pattern[:-1]
        return channel.startswith(head) and "/" not in channel[len(head) :] and len(channel) > len(head)
    return False


class BayeuxServer:
    """Bayeux long-polling server state. Thread-safe: one condition guards every client.

    ``timeout_ms``, ``interval_ms`` and ``max_interval_ms`` are callables so a test can change the
    emulator's config between requests.
    """

    def __init__(
        self,
        *,
        timeout_ms: Callable[[], int],
        interval_ms: Callable[[], int],
        max_interval_ms: Callable[[], int],
    ):
        self._timeout_ms = timeout_ms
        self._interval_ms = interval_ms
        self._max_interval_ms = max_interval_ms
        self._cond = threading.Condition()
        self._clients: dict[str, BayeuxClientState] = {}
        self._ids = itertools.count(1)
        self.expired = 0

    # -- lifecycle ---------------------------------------------------------------------------
    def reset(self) -> None:
        with self._cond:
            self._clients.clear()
            self.expired = 0
            self._cond.notify_all()

    def drop_clients(self) -> int:
        """Expire every client now: each one's next message gets ``402::Unknown client``."""
        with self._cond:
            count = len(self._clients)
            self._clients.clear()
            self.expired += count
            self._cond.notify_all()
        return count

    def state(self) -> dict[str, Any]:
        with self._cond:
            self._sweep()
            return {
                "clients": [
                    {
                        "clientId": c.client_id,
                        "owner": c.owner,
                        "subscriptions": sorted(c.subscriptions),
                        "queued": len(c.queue),
                        "connects": c.connects,
                        "held": c.held,
                    }
                    for c in self._clients.values()
                ],
                "expired": self.expired,
            }

    def client_ids(self, owner: str | None = None) -> list[str]:
        with self._cond:
            self._sweep()
            return [c.client_id for c in self._clients.values() if owner is None or c.owner == owner]

    # -- delivery ----------------------------------------------------------------------------
    def publish(self, owner: str, channel: str, data: Any) -> int:
        """Queue ``data`` on ``channel`` for every live client of ``owner`` subscribed to it;
        returns how many clients got it. Wakes held connects."""
        delivered = 0
        with self._cond:
            self._sweep()
            for client in self._clients.values():
                if client.owner != owner:
                    continue
                if any(channel_matches(sub, channel) for sub in client.subscriptions):
                    client.queue.append({"channel": channel, "data": data, "id": f"m{next(self._ids)}"})
                    delivered += 1
            if delivered:
                self._cond.notify_all()
        return delivered

    # -- requests ----------------------------------------------------------------------------
    def handle(self, messages: list[Any], owner: str) -> list[dict[str, Any]]:
        """Answer one POSTed batch. A ``/meta/connect`` in the batch may block (long poll), so it
        is processed after the other messages; its reply comes last, after queued data."""
        replies: list[dict[str, Any]] = []
        connects: list[dict[str, Any]] = []
        for message in messages:
            if not isinstance(message, dict):
                replies.append({"successful": False, "error": "400::Message must be an object"})
                continue
            if message.get("channel") == "/meta/connect":
                connects.append(message)
                continue
            replies.append(self._handle_one(message, owner))
        for message in connects:
            replies.extend(self._connect(message, owner))
        return replies

    def _handle_one(self, message: dict[str, Any], owner: str) -> dict[str, Any]:
        channel = str(message.get("channel") or "")
        if channel == "/meta/handshake":
            return self._handshake(message, owner)
        if not channel:
            return self._reply(message, successful=False, error="400::Missing channel")
        client = self._client(message, owner)
        if client is None:
            return self._unknown_client(message)
        if channel == "/meta/subscribe":
            return self._subscribe(message, client, add=True)
        if channel == "/meta/unsubscribe":
            return self._subscribe(message, client, add=False)
        if channel == "/meta/disconnect":
            with self._cond:
                client.disconnected = True
                self._clients.pop(client.client_id, None)
                self._cond.notify_all()
            return self._reply(message, successful=True, clientId=client.client_id)
        if channel.startswith("/meta/"):
            return self._reply(message, successful=False, error=f"400::Unknown meta channel {channel}")
        return self._reply(message, successful=False, error="403::Publish denied")

    def _reply(self, message: dict[str, Any], **fields: Any) -> dict[str, Any]:
        reply: dict[str, Any] = {"channel": message.get("channel")}
        if "id" in message:
            reply["id"] = message["id"]
        reply.update(fields)
        return reply

    def _advice(self, reconnect: str = "retry") -> dict[str, Any]:
        return {"reconnect": reconnect, "interval": self._interval_ms(), "timeout": self._timeout_ms()}

    def _unknown_client(self, message: dict[str, Any]) -> dict[str, Any]:
        reply = self._reply(
            message,
            successful=False,
            error="402::Unknown client",
            advice={"reconnect": "handshake", "interval": 0},
        )
        if message.get("clientId"):
            reply["clientId"] = message["clientId"]
        if message.get("channel") in ("/meta/subscribe", "/meta/unsubscribe"):
            reply["subscription"] = message.get("subscription")
        return reply

    def _client(self, message: dict[str, Any], owner: str) -> BayeuxClientState | None:
        with self._cond:
            self._sweep()
            client = self._clients.get(str(message.get("clientId") or ""))
            # A client id is bound to the user that handshook it: another user cannot use it.
            if client is None or client.owner != owner:
                return None
            return client

    def _sweep(self) -> None:
        """Expire clients idle past ``max_interval`` (called with the lock held)."""
        limit = self._max_interval_ms() / 1000.0
        now = time.monotonic()
        for client_id, client in list(self._clients.items()):
            if client.held == 0 and now - client.last_seen > limit:
                del self._clients[client_id]
                self.expired += 1

    def _handshake(self, message: dict[str, Any], owner: str) -> dict[str, Any]:
        types = message.get("supportedConnectionTypes") or []
        if str(message.get("version", "")).split(".")[0] != "1":
            return self._reply(message, successful=False, error="300::Unsupported Bayeux version")
        if LONG_POLLING not in types:
            return self._reply(
                message,
                successful=False,
                error="301::Connection type not supported",
                supportedConnectionTypes=[LONG_POLLING],
                version="1.0",
                advice={"reconnect": "none"},
            )
        client_id = secrets.token_hex(13)
        with self._cond:
            self._sweep()
            self._clients[client_id] = BayeuxClientState(client_id=client_id, owner=owner)
        return self._reply(
            message,
            version="1.0",
            minimumVersion="1.0",
            supportedConnectionTypes=[LONG_POLLING],
            clientId=client_id,
            successful=True,
            advice=self._advice(),
        )

    def _subscribe(self, message: dict[str, Any], client: BayeuxClientState, *, add: bool) -> dict[str, Any]:
        raw = message.get("subscription")
        channels = raw if isinstance(raw, list) else [raw]
        if not channels or any(not isinstance(c, str) or not c.startswith("/") for c in channels):
            return self._reply(
                message, successful=False, error="400::Missing or bad subscription", subscription=raw
            )
        if add and any(c.startswith("/meta/") for c in channels):
            return self._reply(message, successful=False, error="403::Subscription denied", subscription=raw)
        with self._cond:
            if add:
                client.subscriptions.update(channels)
            else:
                client.subscriptions.difference_update(channels)
        return self._reply(message, successful=True, clientId=client.client_id, subscription=raw)

    def _connect(self, message: dict[str, Any], owner: str) -> list[dict[str, Any]]:
        client = self._client(message, owner)
        if client is None:
            return [self._unknown_client(message)]
        if message.get("connectionType", LONG_POLLING) != LONG_POLLING:
            return [
                self._reply(
                    message,
                    successful=False,
                    error="301::Connection type not supported",
                    clientId=client.client_id,
                    advice=self._advice(),
                )
            ]
        with self._cond:
            client.generation += 1
            generation = client.generation
            client.held += 1
            first = client.connects == 0
            client.connects += 1
            try:
                # The first connect returns at once (as CometD's server does); later ones are held
                # until a message is queued, the timeout passes, the client goes away or a newer
                # connect from the same client arrives.
                deadline = time.monotonic() + (0 if first else self._timeout_ms() / 1000.0)
                while (
                    not client.queue
                    and self._clients.get(client.client_id) is client
                    and client.generation == generation
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                gone = self._clients.get(client.client_id) is not client
                data, client.queue = client.queue, []
            finally:
                client.held -= 1
                client.last_seen = time.monotonic()
        if gone:
            # Dropped or disconnected while held: undelivered messages are lost, as on a real server.
            if client.disconnected:
                return [
                    self._reply(
                        message, successful=True, clientId=client.client_id, advice={"reconnect": "none"}
                    )
                ]
            return [self._unknown_client(message)]
        reply = self._reply(message, successful=True, clientId=client.client_id, advice=self._advice())
        return [*data, reply]

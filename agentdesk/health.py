"""``GET /healthz``: every part the product needs, checked for real.

200 when all are up; 503 otherwise. Each check has a short timeout so the endpoint answers within
a few seconds even when a dependency hangs. Anyone (a load balancer) gets up or down only; the
parts, their details and timings go to staff users and to callers sending ``HEALTHZ_TOKEN`` as a
bearer token (``make run`` and the tests do): worker names and engines are no one else's business.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable

import requests
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from agentdesk.celery import app


def check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def check_redis() -> str:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        return "PONG"
    finally:
        client.close()


def check_celery() -> str:
    """A real round trip through the broker: a broadcast ping that a worker must answer."""
    # limit=1: answer as soon as one worker replies instead of waiting out the timeout.
    replies = app.control.ping(timeout=2.0, limit=1)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping through the broker")
    return f"worker {next(iter(replies[0]))} answered"


def check_channel_layer() -> str:
    layer = get_channel_layer()

    async def round_trip() -> None:
        channel = await layer.new_channel("healthz.")
        await layer.send(channel, {"type": "healthz.ping", "nonce": uuid.uuid4().hex})
        await layer.receive(channel)

    import asyncio

    async def bounded() -> None:
        await asyncio.wait_for(round_trip(), timeout=2)

    async_to_sync(bounded)()
    return "round trip ok"


def check_emulators() -> str:
    answer = requests.get(f"{settings.EMULATOR_URL}/_emulator/health", timeout=2)
    answer.raise_for_status()
    return ", ".join(answer.json().get("platforms", [])) or "up"


CHECKS: dict[str, Callable[[], str]] = {
    "database": check_database,
    "redis": check_redis,
    "celery": check_celery,
    "channel_layer": check_channel_layer,
    "emulators": check_emulators,
}


@never_cache
def healthz(request):
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        if name == "emulators" and not settings.EMULATOR_URL:
            continue
        started = time.monotonic()
        try:
            detail = check()
            results[name] = {"ok": True, "detail": detail}
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        results[name]["ms"] = round((time.monotonic() - started) * 1000, 1)
    failing = [name for name, result in results.items() if not result["ok"]]
    body: dict[str, object] = {"status": "ok" if not failing else "failing"}
    if may_see_details(request):
        body.update(failing=failing, checks=results)
    return JsonResponse(body, status=200 if not failing else 503)


def may_see_details(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated and user.is_staff:
        return True
    token = settings.HEALTHZ_TOKEN
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return bool(token) and hmac.compare_digest(sent.encode(), token.encode())

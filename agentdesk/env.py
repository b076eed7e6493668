"""Typed settings helpers: every setting comes from the environment, loud when wrong.

Each helper raises ``ImproperlyConfigured`` naming the variable, so a bad deployment stops at
start with a message that says what to fix.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off (got {raw!r})")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer (got {raw!r})") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum} (got {value})")
    return value


def env_list(name: str, default: str) -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


def env_url(name: str, default: str, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        raise ImproperlyConfigured(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)} (got {value!r})"
        )
    return value


def env_secret(name: str, file: Path) -> str:
    """The variable when set; else a key generated once into ``file`` (kept out of git)."""
    value = env_str(name)
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name} must be at least 32 characters long")
        return value
    if file.exists():
        return file.read_text().strip()
    file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(50)
    # Create with owner-only permissions; a concurrent first start keeps whichever landed first.
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def celery_broker_url(redis_url: str) -> str:
    """The broker URL kombu needs for ``redis_url`` (redis-py's spelling).

    A unix socket is ``redis+socket:///path`` to kombu, and its database is ``virtual_host``:
    kombu drops redis-py's ``?db=N`` on a socket URL and uses database 0, which would mix this
    broker's tasks with whatever else uses database 0 of that server. (``unix:/path``, what
    ``urlunsplit`` writes, is the same socket.)"""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    query = [item for item in parts.query.split("&") if item]
    query = [f"virtual_host={item[3:]}" if item.startswith("db=") else item for item in query]
    return f"redis+socket://{parts.path}" + (f"?{'&'.join(query)}" if query else "")

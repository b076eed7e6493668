"""Secrets never reach a log line: webhook path secrets, tokens in query strings and headers.

A platform's callbacks authenticate with the secret in their path
(``/calls/hooks/<platform>/<secret>/<kind>``), so anyone who reads a line holding it can forge
callbacks. Every process logs through Django's ``LOGGING``, whose handler carries
:class:`RedactSecrets`; daphne's access log (written to a stream, not through ``logging``) is
redacted by :func:`redact_daphne_access_log`, which ``agentdesk.asgi`` installs whatever command
line started daphne.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_PATTERNS = (
    # The webhook secret: the path segment after the platform.
    (re.compile(r"(/hooks/[^/\s?\"']+/)[^/\s?\"']+"), rf"\1{REDACTED}"),
    # Credentials in a query string or a form body.
    (
        re.compile(r"(?i)\b((?:access_?token|token|secret|password|api_?key|signature|sig)=)[^&\s\"']+"),
        rf"\1{REDACTED}",
    ),
    # Credentials in a header written out.
    (
        re.compile(
            r"(?i)\b((?:authorization|x-access-token|cookie)[\"']?\s*[:=]\s*[\"']?)"
            r"(?:bearer\s+|basic\s+)?[^\s,\"']+"
        ),
        rf"\1{REDACTED}",
    ),
)


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: the record's message (arguments merged in) with its secrets replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: logging reports it itself
            return True
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def redact_daphne_access_log() -> None:
    """Make daphne's access log (``AccessLogGenerator``) write redacted request lines."""
    try:
        from daphne.access import AccessLogGenerator
    except ImportError:  # not served by daphne
        return
    original = AccessLogGenerator.write_entry
    if getattr(original, "redacts_secrets", False):
        return

    def write_entry(self, host, date, request, *args, **kwargs):
        return original(self, host, date, redact(request), *args, **kwargs)

    write_entry.redacts_secrets = True
    AccessLogGenerator.write_entry = write_entry

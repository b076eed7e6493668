"""Inbound platform callbacks, for the platforms whose adapter ``receives_callbacks`` (Ryng's
connect and terminal callbacks).

``/calls/hooks/<platform>/<secret>/<kind>`` (``/calls/hooks/ryng/<secret>/connect`` and
``.../terminal``), one ``kind`` per ``Provider.callback_kinds``: Ryng does not sign callbacks
(telephony.md § Ryng), so the unguessable per-account ``webhook_secret`` in the path is the
authentication. A wrong secret, a platform that sends no callbacks or an unknown kind answers 404
(logged, nothing stored).

Every accepted body is kept raw in a ``CallEvent`` and answered **200**, fast:

- a duplicate (Ryng retries a non-200 answer up to twice more), a late callback or one about a
  call we do not know is answered 200, so the platform stops retrying; the ``(account, key)``
  unique constraint makes a repeat a no-op and the state machine never moves backwards;
- a body we cannot parse is also answered 200: a retry would carry the same bytes and fail the
  same way, so asking for it three times only delays the other callbacks. It is stored raw
  (``kind="unreadable"``) and logged at WARNING, so nothing is lost and someone can look.

The query string may carry ``call=<our call key>`` (we add it to the URLs of each preview call) so
a callback finds its call even when the dial's answer never reached us (a worker killed mid-dial).
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from calls import services
from calls.models import CallEvent, TelephonyAccount
from calls.providers import ADAPTERS, get_provider, provider_class
from campaigns import nul

log = logging.getLogger("calls.webhooks")


def account_for_secret(platform: str, secret: str) -> TelephonyAccount | None:
    """The active account of ``platform`` whose webhook secret is ``secret``. Every candidate is
    compared in constant time (accounts are few), so timing tells nothing about the secret."""
    found = None
    for account in TelephonyAccount.objects.filter(platform=platform, is_active=True):
        if secrets.compare_digest(account.webhook_secret.encode(), secret.encode()):
            found = account
    return found


@csrf_exempt
@require_POST
def platform_callback(request: HttpRequest, platform: str, secret: str, kind: str) -> HttpResponse:
    # The URL is anyone's to call: a platform that is not registered is a 404, not an error.
    adapter = provider_class(platform) if platform in ADAPTERS else None
    if adapter is None or not adapter.receives_callbacks or kind not in adapter.callback_kinds:
        raise Http404
    account = account_for_secret(platform, secret)
    if account is None:
        # Never log the secret itself: a prefix of its hash is enough to correlate.
        log.warning(
            "%s %s callback with an unknown secret (sha256 %s) from %s",
            platform,
            kind,
            hashlib.sha256(secret.encode()).hexdigest()[:12],
            request.META.get("REMOTE_ADDR", "?"),
        )
        raise Http404
    # The body is kept whatever it holds; a NUL in it becomes the symbol for one (campaigns.nul).
    raw = nul.shown(request.body.decode("utf-8", "replace"))
    call_hint = request.GET.get("call", "")
    signals = get_provider(account.config()).parse(raw)
    applied = 0
    for signal in signals:
        if signal.kind == "other" and not signal.call_id:
            _store_unreadable(account, signal.key, raw, kind)
            continue
        event = services.call_apply_signal(
            account=account, signal=signal, source=f"callback-{kind}"[:20], raw=raw, call_hint=call_hint
        )
        if event is not None and event.applied:
            applied += 1
        if event is not None and event.call_id is None:
            log.info(
                "%s %s callback for an unknown call %s: kept, not applied", platform, kind, signal.call_id
            )
    return HttpResponse("ok" if applied else "ok (nothing to apply)", content_type="text/plain")


def _store_unreadable(account: TelephonyAccount, key: str, raw: str, kind: str) -> None:
    log.warning(
        "%s %s callback we cannot read (%d bytes): stored raw, answered 200",
        account.platform,
        kind,
        len(raw),
    )
    CallEvent.objects.get_or_create(
        account=account,
        key=key[:200],
        defaults={"source": f"callback-{kind}"[:20], "kind": "unreadable", "raw": raw},
    )

"""The shift's invariants, read from the database and the emulators (docs/shift.md says what each
means). Each check returns a :class:`Result`: how many things it looked at, how many broke it,
and the first few that did. ``python -m bench.shift check`` runs the ones that need no desk.

The checks see only the shift: calls created since ``since`` and the leads they or the desks
touched.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django.db.models import Count

from calls.models import LIVE_STATES, Call, CallState, DialAttempt
from campaigns.models import Lead
from campaigns.selectors import calling_window_status

DONE = (Lead.Status.DONE, Lead.Status.DNC, Lead.Status.EXHAUSTED)
# Where a platform's dial request goes, and how to read its number and acceptance from the
# emulator's request log (the vendors' payloads, docs/emulators-*.md).
DIAL_PATHS = {
    "ryng": "/rest-api/v1/preview/call",
    "huawei": "/agentgateway/resource/voicecall/",
    "genesys": "/api/v2/me/devices/",
}


@dataclass
class Result:
    name: str
    checked: int
    unit: str
    broken: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.broken

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        text = f"{mark} {self.name}: {self.checked} {self.unit}, {len(self.broken)} broken"
        if self.note:
            text += f" ({self.note})"
        for example in self.broken[:5]:
            text += f"\n       - {example}"
        if len(self.broken) > 5:
            text += f"\n       - … and {len(self.broken) - 5} more"
        return text


def shift_calls(since: datetime):
    return Call.objects.filter(created_at__gte=since).select_related(
        "lead__campaign", "agent__user", "account"
    )


# -- one platform dial per dial attempt -----------------------------------------------------------
def accepted_dial(row: dict[str, Any]) -> str | None:
    """The number an emulator log row dialed, if it is a dial request the platform accepted."""
    platform, path, status = row.get("platform"), row.get("path", ""), row.get("status")
    if status != 200:
        return None
    try:
        body = json.loads(row.get("body") or "{}")
        answer = json.loads(row.get("response") or "{}")
    except ValueError:
        return None
    body = body if isinstance(body, dict) else {}
    answer = answer if isinstance(answer, dict) else {}
    if platform == "ryng" and row.get("method") == "POST" and path == DIAL_PATHS["ryng"]:
        query = row.get("query") or {}
        if isinstance(query, str):
            query = parse_qs(query)
        query = {key: values[0] if isinstance(values, list) else values for key, values in query.items()}
        number = query.get("customerNumber") or body.get("customerNumber")
        return str(number) if number and answer.get("error") is False else None
    if platform == "huawei" and path.endswith("/previewCallout"):
        return str(body.get("called")) if str(answer.get("retcode")) == "0" else None
    if platform == "genesys" and row.get("method") == "POST" and path.endswith("/calls"):
        if body.get("operationName") != "Dial" or answer.get("statusCode") != 0:
            return None
        target = body.get("outboundRecord") or body.get("destination") or {}
        return str(target.get("phoneNumber") or "") or None
    return None


def emulator_requests(emulator_url: str, since_epoch: float) -> list[dict[str, Any]]:
    rows = []
    for platform, path in DIAL_PATHS.items():
        answer = requests.get(
            f"{emulator_url}/_emulator/requests", params={"platform": platform, "path": path}, timeout=60
        )
        answer.raise_for_status()
        rows += [row for row in answer.json() if row.get("at", 0) >= since_epoch]
    return rows


def one_dial_per_attempt(since: datetime, request_log: Iterable[dict[str, Any]]) -> Result:
    """Per platform and number: dial requests the platform accepted <= our dial attempts that
    sent one. More means one attempt reached the platform twice (a redial after a lost answer)."""
    attempts: Counter[tuple[str, str]] = Counter()
    for call in shift_calls(since).filter(dial_attempt__tries__gt=0):
        for number in {call.number, call.lead.raw_number} - {""}:
            attempts[(call.account.platform, number)] += 1
    accepted: Counter[tuple[str, str]] = Counter()
    for row in request_log:
        number = accepted_dial(row)
        if number:
            accepted[(row["platform"], number)] += 1
    broken = [
        f"{platform} {number}: {count} dials accepted for {attempts[(platform, number)]} attempt(s)"
        for (platform, number), count in sorted(accepted.items())
        if count > attempts[(platform, number)]
    ]
    total = DialAttempt.objects.filter(call__created_at__gte=since, tries__gt=0).count()
    return Result(
        "one platform dial per dial attempt",
        total,
        "dial attempts",
        broken,
        f"{sum(accepted.values())} dials accepted by the platforms",
    )


# -- no call ended while the platform still had it ----------------------------------------------
def platform_live_calls(emulator_url: str) -> list[dict[str, str]]:
    """Every call an emulator still has up: platform, its call id, and our call key when the
    platform carries it (Ryng's callback URLs)."""
    live = []
    ryng = requests.get(f"{emulator_url}/_emulator/ryng/calls", timeout=30).json()
    for call in ryng:
        if call.get("state") != "ended":
            query = parse_qs(urlsplit(call.get("connectCallbackUrl") or "").query)
            live.append(
                {
                    "platform": "ryng",
                    "id": str(call.get("callID")),
                    "key": (query.get("call") or [""])[0],
                    "log": str(call.get("logID")),
                    "state": str(call.get("state")),
                }
            )
    huawei = requests.get(f"{emulator_url}/_emulator/huawei/agents", timeout=30).json()
    for agent, row in huawei.items():
        if row.get("call"):
            live.append(
                {"platform": "huawei", "id": str(row["call"].get("callid")), "key": "", "agent": agent}
            )
    genesys = requests.get(f"{emulator_url}/_emulator/genesys/state", timeout=30).json()
    for user, row in genesys.get("users", {}).items():
        for call in row.get("calls", []):
            if call.get("state") != "Released":
                live.append({"platform": "genesys", "id": str(call.get("id")), "key": "", "agent": user})
    return live


def closed_while_live(
    since: datetime, live: list[dict[str, str]], spare: set[int] = frozenset()
) -> list[str]:
    """Calls of ours that are over (ended, failed, disposed) while the platform still has them.
    ``spare``: calls the agent ended that are not disposed yet (on Ryng the platform call ends
    with the disposition, by design). Read the database *before* the emulators: a call that we
    closed on the platform's word had ended there first."""
    broken = []
    calls = shift_calls(since)
    by_key = {str(call.key): call for call in calls}
    by_id = {(call.account.platform, call.platform_call_id): call for call in calls if call.platform_call_id}
    for row in live:
        call = by_key.get(row["key"]) or by_id.get((row["platform"], row["id"]))
        if call is None:
            continue  # not a call of this shift (or one whose id we never learned: below)
        if call.state not in LIVE_STATES and call.pk not in spare:
            # What we knew of it against what the platform has: which ids a hang-up could send.
            ours = f"ours {call.platform_call_id or '-'}/{call.platform_log_id or '-'}"
            theirs = f"theirs {row['id']}/{row['log']} {row['state']}" if row.get("log") else ""
            known = f"; {ours}, {theirs}" if theirs else ""
            broken.append(
                f"call {call.pk} ({row['platform']} {row['id']}) is {call.state} here, live there{known}"
            )
    return broken


def no_call_closed_while_live(since: datetime, emulator_url: str | None, sampled: list[str]) -> Result:
    broken = list(sampled)
    looked = 0
    if emulator_url:
        live = platform_live_calls(emulator_url)
        looked = len(live)
        broken += closed_while_live(since, live)
    count = shift_calls(since).exclude(state__in=LIVE_STATES).count()
    return Result(
        "no call ended while the platform still had it",
        count,
        "calls over",
        sorted(set(broken)),
        f"{looked} calls still up on the platforms at the end",
    )


# -- no lead leased to two agents at once ------------------------------------------------------
def overlapping(spans: list[tuple[Any, float, float]]) -> list[tuple[Any, Any]]:
    """Pairs of (owner, start, end) spans of different owners that overlap."""
    spans = sorted(spans, key=lambda span: span[1])
    pairs = []
    for i, (owner, start, end) in enumerate(spans):
        for other, other_start, other_end in spans[i + 1 :]:
            if other_start >= end:
                break
            if other != owner and other_end > start:
                pairs.append((owner, other))
    return pairs


def one_agent_per_lead(since: datetime, holds: dict[str, list[tuple[int, float, float]]]) -> Result:
    """From the calls: no two agents' calls on one lead overlap in time (dial to disposition).
    From the desks (``holds``: per agent, lead shown from its first frame until the agent asked
    to let it go): no lead on two desks at once."""
    broken = []
    spans: dict[int, list[tuple[Any, float, float]]] = defaultdict(list)
    for call in shift_calls(since):
        end = call.disposed_at or call.ended_at
        spans[call.lead_id].append(
            (call.agent.user.get_username(), call.created_at.timestamp(), end.timestamp() if end else 1e12)
        )
    for lead, lead_spans in spans.items():
        for owner, other in overlapping(lead_spans):
            broken.append(f"lead {lead}: calls of {owner} and {other} overlap")
    shown: dict[int, list[tuple[Any, float, float]]] = defaultdict(list)
    for agent, agent_holds in holds.items():
        for lead, start, end in agent_holds:
            shown[lead].append((agent, start, end))
    for lead, lead_spans in shown.items():
        for owner, other in overlapping(lead_spans):
            broken.append(f"lead {lead}: on the desks of {owner} and {other} at once")
    leads = set(spans) | set(shown)
    return Result("no lead leased to two agents at once", len(leads), "leads", sorted(set(broken)))


# -- every lead touched accounted for --------------------------------------------------------------
def leads_accounted(since: datetime, touched: set[int], desks_closed: bool) -> Result:
    """Each lead the shift touched ends done, pending (a retry or never dialed), a booked
    callback; each call disposed or failed with a reason. Broken: a lead left in progress with no
    live call, a callback with no time, a lead still leased once every desk closed, a call left
    live or undisposed once every desk closed, a failure without a reason."""
    calls = list(shift_calls(since))
    ids = touched | {call.lead_id for call in calls}
    leads = Lead.objects.filter(pk__in=ids)
    live_leads = {call.lead_id for call in calls if call.state in LIVE_STATES}
    kinds: Counter[str] = Counter()
    broken = []
    for lead in leads:
        if lead.status in DONE:
            kinds["done"] += 1
        elif lead.status == Lead.Status.PENDING:
            kinds["pending"] += 1
        elif lead.status == Lead.Status.CALLBACK:
            kinds["callback"] += 1
            if lead.next_attempt_at is None:
                broken.append(f"lead {lead.pk}: callback without a time")
        elif lead.status == Lead.Status.IN_PROGRESS:
            kinds["in progress"] += 1
            if lead.pk not in live_leads:
                broken.append(f"lead {lead.pk}: in progress with no live call")
        if desks_closed and lead.lease_owner_id is not None and lead.pk not in live_leads:
            broken.append(f"lead {lead.pk}: still leased after every desk closed")
    for call in calls:
        if call.state == CallState.FAILED:
            kinds["calls failed with a reason"] += 1
            if not call.failure_reason:
                broken.append(f"call {call.pk}: failed without a reason")
        if desks_closed and call.state in (*LIVE_STATES, CallState.ENDED, CallState.FAILED):
            broken.append(f"call {call.pk}: left {call.state} after every desk closed")
    note = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    return Result("every lead touched accounted for", len(ids), "leads", broken, note)


# -- attempts never above the cap -----------------------------------------------------------------
def attempts_within_cap(since: datetime) -> Result:
    ids = set(shift_calls(since).values_list("lead_id", flat=True))
    # Counted apart: on PostgreSQL leads live in partitions with no primary key on the parent, so
    # grouping lead rows by id alone is refused.
    sent = dict(
        DialAttempt.objects.filter(call__lead_id__in=ids)
        .values("call__lead_id")
        .annotate(n=Count("id", distinct=True))
        .values_list("call__lead_id", "n")
    )
    broken = []
    for lead in Lead.objects.filter(pk__in=ids).select_related("campaign"):
        tried = max(lead.attempts, sent.get(lead.pk, 0))
        if lead.campaign.attempt_cap and tried > lead.campaign.attempt_cap:
            broken.append(f"lead {lead.pk}: {tried} attempts, cap {lead.campaign.attempt_cap}")
    return Result("attempts never above the campaign's cap", len(ids), "leads", broken)


# -- no call outside its lead's calling window -------------------------------------------------------
def calls_inside_window(since: datetime) -> Result:
    attempts = DialAttempt.objects.filter(call__created_at__gte=since).select_related("call__lead__campaign")
    broken = []
    checked = 0
    for attempt in attempts:
        checked += 1
        allowed, why = calling_window_status(attempt.call.lead, attempt.created_at)
        if not allowed:
            broken.append(f"call {attempt.call_id}: dialed outside the window ({why})")
    return Result("no call outside its lead's calling window", checked, "dialed calls", broken)


# -- every desk's last frame equals its state re-read over HTTP --------------------------------------
def desks_consistent(comparisons: list[dict[str, Any]]) -> Result:
    broken = [
        f"{row['agent']}: last frame {row['frame']} but over HTTP {row['http']}"
        for row in comparisons
        if not row.get("same")
    ]
    return Result(
        "every desk's last WebSocket frame equals its state re-read over HTTP",
        len(comparisons),
        "desks",
        broken,
    )


def check_database(
    *,
    since: datetime,
    emulator_url: str | None = None,
    since_epoch: float = 0.0,
    holds: dict[str, list[tuple[int, float, float]]] | None = None,
    closed_live_samples: list[str] | None = None,
    desks: list[dict[str, Any]] | None = None,
    desks_closed: bool = False,
) -> list[Result]:
    """Every check; those that need the run's own observations take them as arguments."""
    holds = holds or {}
    touched = {lead for agent_holds in holds.values() for lead, _, _ in agent_holds}
    request_log = emulator_requests(emulator_url, since_epoch) if emulator_url else []
    results = [
        one_dial_per_attempt(since, request_log),
        no_call_closed_while_live(since, emulator_url, closed_live_samples or []),
        one_agent_per_lead(since, holds),
        leads_accounted(since, touched, desks_closed),
        attempts_within_cap(since),
        calls_inside_window(since),
    ]
    if desks is not None:
        results.append(desks_consistent(desks))
    return results

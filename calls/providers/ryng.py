"""Ryng adapter: Make/End Preview Call, Append Campaign, and the connect/terminal callbacks.

Vendor pages: ``seeds/000`` (Make Preview Call and the callback bodies), ``seeds/001`` (End Preview
Call), ``seeds/002`` (Append Campaign); gaps filled from ``telephony.md`` § Ryng. Every request
carries the static ``x-access-token`` header (from ``account.credentials["token"]``, set on the
session once and never logged). The account's ``base_url`` ends in ``/rest-api/v1``.

What Ryng cannot do, and how the adapter says so (see ``docs/providers-ryng.md``):

- no hang-up on its own: End Preview Call both ends *and* disposes, so :meth:`hang_up` raises
  ``NotImplementedError`` and the engine ends a Ryng call through :meth:`dispose`;
- no call lookup: :meth:`lookup_call` raises ``NotImplementedError``;
- no agent sessions: the sign-in/ready operations keep the base class's no-ops.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from typing import Any, ClassVar

import requests

from calls.providers.base import (
    AGENT_CONNECTED,
    CONNECTED,
    CONNECTED_AT,
    ENDED,
    FAILED,
    LOG_ID,
    PLATFORM_CLOSED,
    REASON_BUSY,
    REASON_NO_ANSWER,
    REASON_PLATFORM,
    RECORDING_URL,
    TALK_SECONDS,
    AccountConfig,
    AgentLogin,
    DialRequest,
    DialResult,
    Identity,
    Provider,
    ProviderError,
    Signal,
)

# The connect callback's events and the terminal one (seed 000).
AGENT_CONNECTED_EVENT = "agent-connected"
CUSTOMER_CONNECTED_EVENT = "customer-connected"
CALL_ENDED_EVENT = "call-ended"

EVENT_STATES = {AGENT_CONNECTED_EVENT: AGENT_CONNECTED, CUSTOMER_CONNECTED_EVENT: CONNECTED}

# ``status`` of a terminal callback. The seed shows "2" for a completed call and telephony.md has
# also seen "completed"; the failure words are the emulator's (Exotel's, whose recordings the seed
# links to), since Ryng documents none. Anything else falls back to "did the customer answer?".
FAILURE_STATUSES = {
    "busy": REASON_BUSY,
    "no-answer": REASON_NO_ANSWER,
    "no_answer": REASON_NO_ANSWER,
    "noanswer": REASON_NO_ANSWER,
    "failed": REASON_PLATFORM,
    "canceled": REASON_NO_ANSWER,
    "cancelled": REASON_NO_ANSWER,
}
COMPLETED_STATUSES = {"2", "completed"}

# Ryng's own failure sentences (seeds 000, 001, 002): with these the 500 is a refusal, not a crash.
START_FAILED = "Failed to start call."
DISPOSE_FAILED = "Failed to dispose of call."
CAMPAIGN_FAILED = "Failed to create Campaign"

CUSTOM_FIELD_NAME_KEY = re.compile(r"^customField(\d+)Name$")
CUSTOM_FIELD_KEY = re.compile(r"^customField(\d+)$")

# A value ending one line and a key starting the next with no comma between: the seed's
# terminal example (`"event": "call-ended"` then `"agentID": ...`).
_MISSING_COMMA = re.compile(r'("|\d|true|false|null|\}|\])([ \t]*\r?\n\s*)(?=")')
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")

DEFAULT_APPEND_BATCH = 1000


class RyngProvider(Provider):
    """The Ryng REST API v1. See the module docstring for what Ryng lacks."""

    platform = "ryng"
    label = "Ryng"
    base_url_hint = "…/rest-api/v1"
    credentials_hint = '{"token": "..."}'
    campaign_ref_hint = "campaignID (a number)"
    takes_pushed_leads = True
    ends_on_dispose = True
    receives_callbacks = True
    # seed 000: connectCallbackUrl (agent-connected, customer-connected), terminalCallbackUrl.
    callback_kinds = ("connect", "terminal")
    identity_fields: ClassVar[Mapping[str, str]] = {
        "ref": "Ryng agentID",
        "username": "Ryng agent username",
    }

    def __init__(self, account: AccountConfig, state: MutableMapping[str, Any] | None = None):
        super().__init__(account, state)
        token = self.account.credentials.get("token", "")
        if token:
            # On the session, not per call: one place, and HttpClient never logs headers.
            self.http.session.headers["x-access-token"] = token

    @classmethod
    def agent_login(cls, identity: Identity, credentials: Mapping[str, Any]) -> AgentLogin:
        """The agentID dials (seed 000); the agent username names the agent in Append Campaign
        (seed 002). Ryng has no agent password: the account's token is the only credential."""
        return AgentLogin(ref=identity.ref, username=identity.username)

    # -- HTTP ------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, *, refusal: str, dial: bool = False, **kwargs: Any) -> Any:
        """One Ryng request; the answer's ``data`` on success, else a :class:`ProviderError`."""
        if "x-access-token" not in self.http.session.headers:
            raise self.error("The Ryng account has no access token configured.", code="no_token")
        response = self.http.request(method, path, **kwargs)
        body = _json_or_none(response)
        if response.status_code == 403:
            raise self.error("The Ryng access token was refused.", code="403", http_status=403)
        if response.status_code == 200 and isinstance(body, dict) and body.get("error") is False:
            data = body.get("data")
            return data if isinstance(data, dict) else {}
        raise self._refused(response, body, refusal=refusal, dial=dial)

    def _refused(self, response: requests.Response, body: Any, *, refusal: str, dial: bool) -> ProviderError:
        status = response.status_code
        message = body.get("message") if isinstance(body, dict) else None
        if status >= 500 and message == START_FAILED:
            # Ryng answers this one 500 both for a bad request and for its own trouble. We check
            # our parameters before sending (see _dial_body), so a well-formed dial that gets it
            # is worth another try; "Failed" says no call was started, so it is not ambiguous.
            return self.error(
                "Ryng could not start the call.", code="500", permanent=False, http_status=status
            )
        if status >= 500 and message in (DISPOSE_FAILED, CAMPAIGN_FAILED):
            # Unknown call, wrong logID, already disposed, a disposition name Ryng does not know,
            # or a sheet it will not take: the same request fails the same way again.
            return self.error(refusal, code="500", permanent=True, http_status=status)
        if status >= 500:
            # Not Ryng's envelope (a proxy, a crash): try again later. A dial may have gone out.
            return self.error(
                f"Ryng had an internal error (HTTP {status}).",
                code=str(status),
                permanent=False,
                http_status=status,
                ambiguous=dial,
            )
        return self.error(
            f"{refusal} (HTTP {status}{': ' + message if message else ''})",
            code=str(status),
            permanent=True,
            http_status=status,
        )

    # -- calls -------------------------------------------------------------------------------------
    def dial(self, request: DialRequest) -> DialResult:
        """Make Preview Call (seed 000). ``agent.ref`` is the Ryng agentID and
        ``platform_campaign_id`` the campaignID; both must be integers."""
        data = self._call(
            "POST",
            "/preview/call",
            json=self._dial_body(request),
            refusal="Ryng could not start the call.",
            dial=True,
        )
        call_id, log_id = data.get("callID"), data.get("logID")
        if call_id is None or log_id is None:
            raise self.error("Ryng accepted the call but sent no callID/logID.", code="200", permanent=False)
        return DialResult(call_id=str(call_id), log_id=str(log_id), raw=data)

    def _dial_body(self, request: DialRequest) -> dict[str, Any]:
        agent_id = _int_or_none(request.agent.ref)
        campaign_id = _int_or_none(request.platform_campaign_id)
        if agent_id is None:
            raise self.error("This agent has no Ryng agentID (a number) set.", code="invalid")
        if campaign_id is None:
            raise self.error("This campaign has no Ryng campaignID (a number) set.", code="invalid")
        if not request.number.strip():
            raise self.error("The lead has no number to call.", code="invalid")
        body: dict[str, Any] = {
            "agentID": agent_id,
            "campaignID": campaign_id,
            "customerNumber": request.number,
        }
        optional = {
            "customerName": request.customer_name,
            "connectCallbackUrl": request.connect_callback_url,
            "terminalCallbackUrl": request.terminal_callback_url,
        }
        body.update({key: value for key, value in optional.items() if value})
        return body

    def hang_up(self, agent: AgentLogin, call_id: str, *, log_id: str = "") -> None:
        """Not expressible on Ryng: End Preview Call ends *and* disposes in one request and needs
        the disposition name. The engine ends a Ryng call by calling :meth:`dispose` once the agent
        has chosen the disposition (the agent can also hang up their own phone)."""
        raise NotImplementedError("Ryng ends a call only together with its disposition: use dispose()")

    @classmethod
    def can_end_call(cls, call_id: str, log_id: str = "") -> bool:
        """End Preview Call needs both the callID (path) and the logID (seed 001: required). The
        dial's answer carries both; a connect callback only the callID; the terminal callback both
        (``callLogID``). A dial whose answer was lost (a timeout) has neither until a callback
        comes, and no lookup exists: such a call cannot be ended from here."""
        return str(call_id or "").strip().isdigit() and _int_or_none(log_id) is not None

    def lookup_call(self, request: DialRequest) -> DialResult | None:
        """Ryng has no API to find a call (telephony.md: no list endpoints). After an ambiguous
        dial the connect callbacks are the only way to learn that the call went out."""
        raise NotImplementedError("Ryng offers no call lookup")

    def dispose(
        self,
        agent: AgentLogin,
        call_id: str,
        *,
        log_id: str = "",
        disposition: str,
        notes: str = "",
        offer: Mapping[str, Any] | None = None,
        callback_at: int | None = None,
        final: bool = True,
    ) -> None:
        """End Preview Call (seed 001): ends the call if it is still up and records the
        disposition, which must be a name configured at Ryng. ``callback_at`` and ``final`` have
        no Ryng counterpart: callbacks are booked on our side."""
        log_number = _int_or_none(log_id)
        if not str(call_id).strip().isdigit() or log_number is None:
            raise self.error("This call has no Ryng callID/logID to dispose.", code="invalid")
        if not disposition.strip():
            raise self.error("A disposition is required to end a Ryng call.", code="invalid")
        self._call(
            "PATCH",
            f"/preview/call/{str(call_id).strip()}",
            json={"logID": log_number, "dispositionName": disposition, "notes": notes or ""},
            refusal=(
                "Ryng refused to end and dispose the call (unknown call, wrong logID, already"
                " disposed, or a disposition name Ryng does not know)."
            ),
        )

    # -- leads ---------------------------------------------------------------------------------------
    def append_leads(
        self,
        platform_campaign_id: str,
        rows: list[Mapping[str, Any]],
        *,
        fmt: str = "json",
        agent_mapping: str = "all-agents",
        agents: list[str] | None = None,
        custom_field_names: Mapping[str, str] | Sequence[str] | None = None,
        name: str = "",
        connect_callback_url: str = "",
        terminal_callback_url: str = "",
        accepted: Callable[[int], None] | None = None,
    ) -> None:
        """Append Campaign (seed 002), in batches of ``options["append_batch_size"]`` rows, each
        told to ``accepted`` once Ryng took it.

        A row is ``{"number": str, "agents": [usernames] (inline mapping), "custom_fields":
        {name: value}}``; ``customField{N}`` keys on the row are taken as they are.
        ``custom_field_names`` is Ryng's ``{"customField1Name": "Name", ...}`` or a list of names
        (field 1 first). ``fmt="csv"`` uploads a ``campaign-sheet``; CSV cannot carry callback URLs.
        """
        if fmt not in ("json", "csv"):
            raise ValueError("fmt must be 'json' or 'csv'")
        if agent_mapping not in ("global", "inline", "all-agents"):
            raise ValueError("agent_mapping must be global, inline or all-agents")
        campaign_id = _int_or_none(platform_campaign_id)
        if campaign_id is None:
            raise self.error("This campaign has no Ryng campaignID (a number) set.", code="invalid")
        if agent_mapping == "global" and not agents:
            raise self.error("Ryng needs at least one agent for a global agent mapping.", code="invalid")
        try:
            names = _with_unnamed_fields(_field_names(custom_field_names), rows)
            leads = [_lead(row, names) for row in rows]
        except ValueError as exc:
            raise self.error(f"The leads do not fit Ryng's custom fields: {exc}", code="invalid") from exc
        if any(not lead["number"] for lead in leads):
            raise self.error("A lead without a number cannot go to Ryng.", code="invalid")
        size = int(self.account.options.get("append_batch_size", DEFAULT_APPEND_BATCH))
        for start in range(0, len(leads), max(1, size)):
            batch = leads[start : start + size]
            # A one-lead sheet needs agents named (seed 002) which "all agents" does not give: that
            # lead (a CRM's single lead, the last of 501) goes as JSON, which carries the same.
            one_lead_sheet = len(batch) == 1 and agent_mapping == "all-agents"
            if fmt == "csv" and not one_lead_sheet:
                self._append_csv(campaign_id, batch, names, agent_mapping, agents or [])
            else:
                body = _append_json(
                    batch,
                    names,
                    agent_mapping=agent_mapping,
                    agents=agents or [],
                    name=name,
                    connect_callback_url=connect_callback_url,
                    terminal_callback_url=terminal_callback_url,
                )
                self._call("POST", f"/campaign/{campaign_id}", json=body, refusal="Ryng refused the leads.")
            if accepted:
                accepted(len(batch))

    def _append_csv(
        self,
        campaign_id: int,
        leads: list[dict[str, Any]],
        names: dict[int, str],
        agent_mapping: str,
        agents: list[str],
    ) -> None:
        inline = agent_mapping == "inline"
        sheet = _sheet(leads, names, inline=inline)
        # form-data: repeated ``agents`` fields for a list, "in-file" for the sheet's own column,
        # nothing for all agents (seed 002's default).
        fields = [("agents", "in-file")] if inline else [("agents", a) for a in agents]
        if agent_mapping == "all-agents":
            fields = []
        self._call(
            "POST",
            f"/campaign/{campaign_id}",
            data=fields,
            files={"campaign-sheet": ("leads.csv", sheet, "text/csv")},
            refusal="Ryng refused the lead sheet.",
        )

    # -- signals in ------------------------------------------------------------------------------------
    def parse(self, payload: Any) -> list[Signal]:
        """A connect or terminal callback body (a dict, or the raw text/bytes as received) as one
        signal. Tolerant: repeated keys keep their *first* value, a missing comma between lines is
        repaired, ``status`` may be "2" or "completed", timestamps may be null."""
        body, duplicates = _decode(payload)
        if not isinstance(body, dict):
            return [Signal(kind="other", key=f"ryng:unreadable:{_digest(payload)}", raw=payload)]
        call_id = _text(body.get("callID"))
        event = _event(body)
        if not call_id or event is None:
            return [Signal(kind="other", key=f"ryng:other:{_digest(body)}", call_id=call_id, raw=body)]
        data = _signal_data(body)
        if duplicates:
            data["duplicate_keys"] = duplicates
        if event in EVENT_STATES:
            return [
                Signal(
                    kind="call",
                    key=f"ryng:{call_id}:{event}",
                    call_id=call_id,
                    state=EVENT_STATES[event],
                    data=data,
                    raw=body,
                )
            ]
        if event == CALL_ENDED_EVENT:
            state, reason = _ended_state(body)
            if body.get("callDisposed"):
                data[PLATFORM_CLOSED] = True  # only End Preview Call disposes a Ryng call
            # A call can end (customer hang-up, busy) and be disposed later: two real events, so
            # the disposed callback gets its own key; a retry of either repeats its key.
            suffix = ":disposed" if body.get("callDisposed") else ""
            return [
                Signal(
                    kind="call",
                    key=f"ryng:{call_id}:{event}{suffix}",
                    call_id=call_id,
                    state=state,
                    reason=reason,
                    data=data,
                    raw=body,
                )
            ]
        return [
            Signal(
                kind="other",
                key=f"ryng:{call_id}:{event}:{_digest(body)}",
                call_id=call_id,
                data=data,
                raw=body,
            )
        ]


# -- parsing helpers ------------------------------------------------------------------------------------


def _decode(payload: Any) -> tuple[Any, dict[str, list[Any]]]:
    """(the body, keys that appeared more than once with all their values)."""
    if isinstance(payload, Mapping):
        return dict(payload), {}
    if isinstance(payload, bytes | bytearray):
        payload = bytes(payload).decode("utf-8", "replace")
    if not isinstance(payload, str):
        return None, {}
    duplicates: dict[str, list[Any]] = {}

    def first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # The seed's connect example repeats "callbackType" and "event", the second time with
        # "customer-connected". json.loads would keep the last; we keep the first, because the
        # first sits where the clean copy of the same example (seed 002) has it and agrees with
        # the body's own "callStarted": null (the customer has not connected yet).
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                duplicates.setdefault(key, [seen[key]]).append(value)
                continue
            seen[key] = value
        return seen

    text = payload.strip().lstrip("\ufeff")
    for candidate in (text, _TRAILING_COMMA.sub(r"\1", _MISSING_COMMA.sub(r"\1,\2", text))):
        duplicates.clear()
        try:
            return json.loads(candidate, object_pairs_hook=first_wins), dict(duplicates)
        except (ValueError, RecursionError):  # RecursionError: nesting deeper than Python's stack
            continue
    return None, {}


def _event(body: Mapping[str, Any]) -> str | None:
    """The event, inferred when missing: terminal -> call-ended; connect -> by callStarted."""
    event = body.get("event")
    if isinstance(event, str) and event.strip():
        return event.strip().lower()
    kind = str(body.get("callbackType") or "").lower()
    if kind == "terminal":
        return CALL_ENDED_EVENT
    if kind == "connect":
        return CUSTOMER_CONNECTED_EVENT if body.get("callStarted") else AGENT_CONNECTED_EVENT
    return None


def _ended_state(body: Mapping[str, Any]) -> tuple[str, str]:
    """ENDED when the customer was on the line; else FAILED with busy / no_answer / platform."""
    status = str(body.get("status") or "").strip().lower()
    if status in FAILURE_STATUSES:
        return FAILED, FAILURE_STATUSES[status]
    # "2"/"completed" or an unknown status: a call the customer never picked up (no callStarted,
    # no talk time) is unanswered, e.g. the agent ended it while the customer's phone rang.
    if body.get("callStarted") or (_int_or_none(body.get("talktime")) or 0) > 0:
        return ENDED, ""
    return FAILED, REASON_NO_ANSWER


def _signal_data(body: Mapping[str, Any]) -> dict[str, Any]:
    keys = (
        "callLogID", "agentID", "agentUsername", "agentNum", "customerNum", "virtualNum",
        "callCreated", "callStarted", "callEnded", "callDisposed", "callbackTime", "callDirection",
        "disposition", "parentDisposition", "notes", "recordingUrl", "callbackType", "event",
    )  # fmt: skip
    data: dict[str, Any] = {key: body.get(key) for key in keys if key in body}
    if "callLogID" in data:
        data["callLogID"] = _text(data["callLogID"])
    for key in ("talktime", "callDuration"):
        if key in body:
            data[key] = _int_or_none(body.get(key))
    if "status" in body:
        data["status"] = _text(body.get("status"))
    if "legDetails" in body:
        data["legDetails"] = _legs(body.get("legDetails"))
    for key in ("customFieldNames", "customFields"):
        value = body.get(key)
        data[key] = dict(value) if isinstance(value, Mapping) else {}
    # The engine's own words for what it keeps on the call (base.TALK_SECONDS ...).
    if data.get("talktime") is not None:
        data[TALK_SECONDS] = data["talktime"]
    if data.get("recordingUrl"):
        data[RECORDING_URL] = str(data["recordingUrl"])
    if data.get("callLogID"):
        data[LOG_ID] = data["callLogID"]
    if data.get("callStarted"):
        data[CONNECTED_AT] = str(data["callStarted"])
    return data


def _legs(value: Any) -> dict[str, Any]:
    """legDetails as ``{"leg0Status": .., "leg0Duration": ..}`` whatever shape it came in: that
    object, the same as a JSON string, or a list of ``{"status", "duration"}`` per leg."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {"raw": value}
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, list):
        legs: dict[str, Any] = {}
        for n, leg in enumerate(value):
            if isinstance(leg, Mapping):
                legs[f"leg{n}Status"] = leg.get("status", leg.get(f"leg{n}Status"))
                legs[f"leg{n}Duration"] = leg.get("duration", leg.get(f"leg{n}Duration"))
        return legs
    return {}


def _digest(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    text = str(value).strip()
    return int(text) if text.isdigit() else None


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


# -- Append Campaign helpers ------------------------------------------------------------------------------


def _field_names(names: Mapping[str, str] | Sequence[str] | None) -> dict[int, str]:
    """Custom field names by number: Ryng's ``customField{N}Name`` keys, or a list (1 first)."""
    if not names:
        return {}
    if isinstance(names, Mapping):
        found = {}
        for key, value in names.items():
            match = CUSTOM_FIELD_NAME_KEY.match(str(key))
            if match is None:
                raise ValueError(f"custom field name keys must be customField{{N}}Name, not {key!r}")
            found[int(match.group(1))] = str(value)
        return dict(sorted(found.items()))
    return {n: str(title) for n, title in enumerate(names, start=1)}


def _with_unnamed_fields(names: dict[int, str], rows: list[Mapping[str, Any]]) -> dict[int, str]:
    """The campaign's field names plus any other names the rows' ``custom_fields`` use, numbered
    after the last known one in order of first appearance, so no lead's data is dropped and every
    row of the push numbers a field the same way."""
    names = dict(names)
    known = set(names.values())
    for row in rows:
        for key in row.get("custom_fields") or {}:
            key = str(key)
            if key not in known and not CUSTOM_FIELD_KEY.match(key):
                names[max(names, default=0) + 1] = key
                known.add(key)
    return names


def _lead(row: Mapping[str, Any], names: dict[int, str]) -> dict[str, Any]:
    """One row as {number, agents, fields: {N: value}}."""
    by_name = {title: n for n, title in names.items()}
    fields: dict[int, str] = {}
    for key, value in (row.get("custom_fields") or {}).items():
        match = CUSTOM_FIELD_KEY.match(str(key))
        n = int(match.group(1)) if match else by_name.get(str(key))
        if n is None:  # cannot happen after _with_unnamed_fields; kept as a guard
            raise ValueError(f"custom field {key!r} has no number")
        if value is not None:
            fields[n] = str(value)
    for key, value in row.items():
        match = CUSTOM_FIELD_KEY.match(str(key))
        if match and value is not None:
            fields[int(match.group(1))] = str(value)
    agents = row.get("agents") or row.get("agentsAssigned") or []
    if isinstance(agents, str):
        agents = [a.strip() for a in agents.split(",") if a.strip()]
    return {"number": _text(row.get("number")), "agents": list(agents), "fields": fields}


def _append_json(
    leads: list[dict[str, Any]],
    names: dict[int, str],
    *,
    agent_mapping: str,
    agents: list[str],
    name: str,
    connect_callback_url: str,
    terminal_callback_url: str,
) -> dict[str, Any]:
    rows = []
    for lead in leads:
        row: dict[str, Any] = {"number": lead["number"]}
        if agent_mapping == "inline" and lead["agents"]:
            row["agentsAssigned"] = lead["agents"]
        row.update({f"customField{n}": value for n, value in sorted(lead["fields"].items())})
        rows.append(row)
    customer_data: dict[str, Any] = {}
    if connect_callback_url:
        customer_data["connectCallbackUrl"] = connect_callback_url
    if terminal_callback_url:
        customer_data["terminalCallbackUrl"] = terminal_callback_url
    customer_data["jsonData"] = rows
    body: dict[str, Any] = {"agentMapping": agent_mapping}
    if name:
        body["name"] = name
    if agent_mapping == "global":
        body["agents"] = list(agents)
    if names:
        body["customFieldNames"] = {f"customField{n}Name": title for n, title in names.items()}
    body["customerData"] = customer_data
    return body


def _sheet(leads: list[dict[str, Any]], names: dict[int, str], *, inline: bool) -> bytes:
    """The campaign-sheet: ``number``, ``agents`` (inline only), then one column per custom field.
    A sheet's column header becomes the field's name, numbered in column order; when the numbers
    have gaps the columns are headed ``customField{N}`` instead, so every value keeps its number."""
    numbers = sorted(set(names) | {n for lead in leads for n in lead["fields"]})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    reserved = {"number", "agents", "agent", "agentsassigned"}  # the columns Ryng reads itself
    contiguous = numbers == list(range(1, len(numbers) + 1)) and not any(
        names.get(n, "").strip().lower() in reserved for n in numbers
    )
    titles = [names.get(n, f"customField{n}") if contiguous else f"customField{n}" for n in numbers]
    header = ["number"] + (["agents"] if inline else []) + titles
    writer.writerow(header)
    for lead in leads:
        cells = [lead["number"]] + ([",".join(lead["agents"])] if inline else [])
        writer.writerow(cells + [lead["fields"].get(n, "") for n in numbers])
    return out.getvalue().encode("utf-8")

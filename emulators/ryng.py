"""The Ryng emulator: Make/End Preview Call, Append Campaign, and the connect/terminal callbacks.

Faithful to ``seeds/000`` (Make Preview Call), ``seeds/001`` (End Preview Call), ``seeds/002``
(Append Campaign) and ``telephony.md`` § Ryng. Where the vendor is silent the choice is written
here and in ``docs/emulators-ryng.md``; the ones a test may want to flip are knobs under
``/_emulator/ryng/config`` (see :data:`DEFAULT_SETTINGS`).

A call's life on the emulator clock (all platform seconds, scaled by ``EMULATOR_TIME_SCALE``)::

    POST /preview/call ──agent_ring_seconds──> connect "agent-connected"
        ──ring_seconds──> answer:   connect "customer-connected" ──talk_seconds──> customer hangs up
                          no_answer/busy/fail: the call ends; terminal "call-ended" (status
                          "no-answer"/"busy"/"failed")
    PATCH /preview/call/{callID} (any time): ends and disposes; terminal "call-ended" with the
    disposition. After a customer hang-up or a failure the call stays open for the PATCH.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from emulators.core import Outcome, Platform, Request, Response, Router, json_response

# The envelopes, word for word from the seeds.
UNAUTHORIZED = {"error": True, "message": "Unauthorized Token"}
START_FAILED = {"error": True, "message": "Failed to start call."}
DISPOSE_FAILED = {"error": True, "message": "Failed to dispose of call."}
CAMPAIGN_FAILED = {"error": True, "message": "Failed to create Campaign"}
DISPOSED = {"error": False, "message": "Call disposed and ended.", "data": {}}
PROCESSING = {"error": False, "message": "Processing Campaign...", "data": {}}

AGENT_MAPPINGS = ("global", "inline", "all-agents")
CUSTOM_FIELD_NAME_KEY = re.compile(r"^customField(\d+)Name$")
CUSTOM_FIELD_KEY = re.compile(r"^customField(\d+)$")

# Leg status codes are undocumented (telephony.md: "Unknown: meaning of ... leg status codes").
# The seed shows 5 on both legs of a completed call; the others are this emulator's invention,
# so the adapter reads the call's ``status`` string, never these numbers.
LEG_STATUS = {"completed": 5, "busy": 6, "no-answer": 7, "failed": 8}

# Knobs for what the vendor does not document; POST /_emulator/ryng/config changes them.
DEFAULT_SETTINGS: dict[str, Any] = {
    # Send the terminal callback when the call ends without a PATCH (customer hang-up, no answer,
    # busy, failure), with disposition null; the PATCH then sends a second one, disposed.
    # False: hold it until the PATCH (the only moment the seeds' example describes).
    "terminal_on_hangup": True,
    # The seed's completed call carries status "2"; telephony.md has also seen "completed".
    "completed_status": "2",
    "virtual_number": "+914954389444",  # the seed's virtualNum
    "recording_base": "https://recordings.ryng.example/",
}


def _iso(moment: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and ``Z``, like the seeds' ``2023-01-19T08:07:07.000Z``."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _sid() -> str:
    """A call SID shaped like the seed's ``z7a81-01uy-cydty``."""
    alphabet = string.ascii_lowercase + string.digits
    return "-".join("".join(secrets.choice(alphabet) for _ in range(n)) for n in (5, 4, 5))


def _digits(number: str) -> str:
    return re.sub(r"\D", "", number)


def _as_int(value: Any) -> int | None:
    """Ryng's ``int`` parameters: a JSON integer or a string of digits (query strings are text)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _split_agents(values: list[str] | str | None) -> list[str]:
    """Agent usernames from repeated fields and/or comma (or semicolon) separated lists."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    found: list[str] = []
    for value in values:
        found.extend(part.strip() for part in re.split(r"[,;]", str(value)) if part.strip())
    return found


class CampaignError(Exception):
    """An Append Campaign body Ryng would refuse with ``Failed to create Campaign``."""


@dataclass
class RyngCall:
    call_id: int
    log_id: int
    sid: str
    agent: dict[str, Any]
    campaign_id: int
    customer_number: str
    customer_name: str
    connect_url: str
    terminal_url: str
    outcome: Outcome
    created: datetime
    created_mono: float
    custom_field_names: dict[str, str] = field(default_factory=dict)
    custom_fields: dict[str, str] = field(default_factory=dict)
    # agent_ringing -> customer_ringing -> connected -> ended; ``disposed`` is separate because a
    # call can end (customer hang-up, busy) and be disposed later.
    state: str = "agent_ringing"
    end_status: str = ""  # completed | no-answer | busy | failed
    agent_connected: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    disposed: datetime | None = None
    disposition: str | None = None
    notes: str | None = None
    callbacks: list[str] = field(default_factory=list)
    timers: list[threading.Timer] = field(default_factory=list)

    def public(self) -> dict[str, Any]:
        return {
            "callID": self.call_id,
            "logID": self.log_id,
            "sid": self.sid,
            "agentID": self.agent["agentID"],
            "campaignID": self.campaign_id,
            "customerNumber": self.customer_number,
            "customerName": self.customer_name,
            "connectCallbackUrl": self.connect_url,
            "terminalCallbackUrl": self.terminal_url,
            "outcome": self.outcome.result,
            "state": self.state,
            "endStatus": self.end_status or None,
            "disposed": self.disposed is not None,
            "disposition": self.disposition,
            "notes": self.notes,
            "callCreated": _iso(self.created),
            "callStarted": _iso(self.started),
            "callEnded": _iso(self.ended),
            "callDisposed": _iso(self.disposed),
            "callbacksSent": list(self.callbacks),
        }


class RyngEmulator(Platform):
    """Ryng's REST API v1 under ``/rest-api/v1`` plus its control API under ``/_emulator/ryng``."""

    name = "ryng"
    prefix = "/rest-api/v1"

    def __init__(self, emulator: Any):
        super().__init__(emulator)
        self.reset()

    # -- wiring ----------------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        p = self.prefix
        self.route(router, "POST", rf"{p}/preview/call", self.make_preview_call)
        self.route(router, "PATCH", rf"{p}/preview/call/(?P<call_id>[^/]+)", self.end_preview_call)
        self.route(router, "POST", rf"{p}/campaign/(?P<campaign_id>[^/]+)", self.append_campaign)
        # Control routes belong to "control": faults never hit them and they are not logged.
        c = "/_emulator/ryng"
        router.add("GET", rf"{c}/calls", self.control_calls)
        router.add("GET", rf"{c}/calls/(?P<call_id>\d+)", self.control_call)
        router.add("POST", rf"{c}/calls/(?P<call_id>\d+)/hangup", self.control_hangup)
        router.add("GET", rf"{c}/campaigns", self.control_campaigns)
        router.add("GET", rf"{c}/campaigns/(?P<campaign_id>\d+)/leads", self.control_leads)
        router.add("GET", rf"{c}/agents", self.control_agents)
        router.add("POST", rf"{c}/agents", self.control_add_agent)
        router.add("GET", rf"{c}/config", self.control_config)
        router.add("POST", rf"{c}/config", self.control_set_config)

    def reset(self) -> None:
        with self.lock:
            for call in getattr(self, "calls", {}).values():
                for timer in call.timers:
                    timer.cancel()
            self.calls: dict[int, RyngCall] = {}
            self.campaigns: dict[int, dict[str, Any]] = {}
            self.agents: dict[int, dict[str, Any]] = {}
            self.settings: dict[str, Any] = dict(DEFAULT_SETTINGS)
            # Start where the seed's example answer is, so ids look like Ryng's.
            self.next_call_id = 16703
            self.next_log_id = 87288

    def _authorized(self, req: Request) -> bool:
        token = req.header("x-access-token")
        return bool(token) and secrets.compare_digest(token, self.config.ryng_token)

    # -- Make Preview Call (seed 000) ---------------------------------------------------------------
    def make_preview_call(self, req: Request) -> Response:
        if not self._authorized(req):
            return json_response(UNAUTHORIZED, 403)
        agent_id = _as_int(req.param("agentID"))
        campaign_id = _as_int(req.param("campaignID"))
        number = req.param("customerNumber")
        if isinstance(number, int) and not isinstance(number, bool):
            number = str(number)
        # One 500 for every refusal: the seed documents no other failure answer.
        if agent_id is None or campaign_id is None or not isinstance(number, str) or not number.strip():
            return json_response(START_FAILED, 500)
        outcome = self.emulator.outcomes.take(self.name, number)
        if outcome.result == "error":
            return json_response(START_FAILED, 500)
        name = req.param("customerName")
        connect_url = req.param("connectCallbackUrl") or ""
        terminal_url = req.param("terminalCallbackUrl") or ""
        with self.lock:
            lead, campaign = self._find_lead(campaign_id, number)
            call = RyngCall(
                call_id=self.next_call_id,
                log_id=self.next_log_id,
                sid=_sid(),
                agent=self._agent(agent_id),
                campaign_id=campaign_id,
                customer_number=number.strip(),
                customer_name=str(name) if name is not None else "",
                # Silent in the docs: a preview call without its own URLs falls back to the
                # URLs given when its number was appended to the campaign.
                connect_url=str(connect_url) or (campaign or {}).get("connectCallbackUrl", ""),
                terminal_url=str(terminal_url) or (campaign or {}).get("terminalCallbackUrl", ""),
                outcome=outcome,
                created=datetime.now(UTC),
                created_mono=time.monotonic(),
                custom_field_names=dict((campaign or {}).get("customFieldNames", {})),
                custom_fields=dict((lead or {}).get("customFields", {})),
            )
            self.next_call_id += 1
            self.next_log_id += 1
            self.calls[call.call_id] = call
            self._later(call, outcome.agent_ring_seconds, self._agent_connects)
        return json_response(
            {
                "error": False,
                "message": f"Call Initiated With SID {call.sid}",
                "data": {"callID": call.call_id, "logID": call.log_id},
            }
        )

    def _agent(self, agent_id: int) -> dict[str, Any]:
        """The agent's identity. Any agentID is accepted (there is no agent list API to be faithful
        to); unregistered ids get a made-up username and number. Register real-looking ones with
        ``POST /_emulator/ryng/agents``."""
        known = self.agents.get(agent_id)
        if known:
            return dict(known)
        return {
            "agentID": agent_id,
            "agentUsername": f"agent{agent_id}@ryng.example",
            "agentNum": f"+9190000{agent_id % 100000:05d}",
        }

    def _find_lead(
        self, campaign_id: int, number: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        campaign = self.campaigns.get(campaign_id)
        if not campaign:
            return None, None
        wanted = _digits(number)
        for lead in reversed(campaign["leads"]):
            if _digits(lead["number"]) == wanted:
                return lead, campaign
        return None, campaign

    # -- the call's progress on the clock ---------------------------------------------------------
    def _later(self, call: RyngCall, seconds: float, step: Any) -> None:
        call.timers.append(self.clock.later(seconds, step, call.call_id))

    def _live(self, call_id: int, state: str) -> RyngCall | None:
        """The call if it still exists (no reset since) and is in ``state`` (no PATCH since)."""
        call = self.calls.get(call_id)
        return call if call is not None and call.state == state else None

    def _platform_now(self, call: RyngCall) -> datetime:
        """Platform time: the call's timestamps advance by scaled seconds, so a scripted 30 s talk
        shows ``talktime`` 30 even though it lasted 0.3 s in a test."""
        scale = max(self.config.time_scale, 1e-6)
        return call.created + timedelta(seconds=(time.monotonic() - call.created_mono) / scale)

    def _agent_connects(self, call_id: int) -> None:
        with self.lock:
            call = self._live(call_id, "agent_ringing")
            if call is None:
                return
            call.agent_connected = self._platform_now(call)
            call.state = "customer_ringing"
            self._send_connect(call, "agent-connected")
            self._later(call, call.outcome.ring_seconds, self._customer_answers_or_not)

    def _customer_answers_or_not(self, call_id: int) -> None:
        with self.lock:
            call = self._live(call_id, "customer_ringing")
            if call is None:
                return
            if call.outcome.result == "answer":
                call.started = self._platform_now(call)
                call.state = "connected"
                self._send_connect(call, "customer-connected")
                if call.outcome.talk_seconds is not None:
                    self._later(call, float(call.outcome.talk_seconds), self._customer_hangs_up)
                return
            status = {"no_answer": "no-answer", "busy": "busy"}.get(call.outcome.result, "failed")
            self._end(call, status)

    def _customer_hangs_up(self, call_id: int) -> None:
        with self.lock:
            call = self._live(call_id, "connected")
            if call is not None:
                self._end(call, "completed")

    def _end(self, call: RyngCall, status: str) -> None:
        """The call ends without a PATCH; it stays open for the disposition."""
        call.state = "ended"
        call.end_status = status
        call.ended = self._platform_now(call)
        if self.settings["terminal_on_hangup"]:
            self._send_terminal(call)

    # -- callbacks ----------------------------------------------------------------------------------
    def _send_connect(self, call: RyngCall, event: str) -> None:
        body = {
            "callID": call.call_id,
            "callbackType": "connect",
            "event": event,
            "agentID": call.agent["agentID"],
            "agentUsername": call.agent["agentUsername"],
            "agentNum": call.agent["agentNum"],
            "customerNum": call.customer_number,
            "callCreated": _iso(call.created),
            "callStarted": _iso(call.started),  # null until the customer connects (seed 000)
            "callDirection": "outbound",
            "customFieldNames": dict(call.custom_field_names),
            "customFields": dict(call.custom_fields),
        }
        call.callbacks.append(event)
        # seed 002: "On any non-200 response, Ryng will retry the callback after a 1 minute
        # interval one more time."
        self.emulator.send_callback(call.connect_url, body, label=event, retries=1, interval=60)

    def _send_terminal(self, call: RyngCall) -> None:
        status = self.settings["completed_status"] if call.end_status == "completed" else call.end_status
        talktime = int((call.ended - call.started).total_seconds()) if call.started and call.ended else 0
        agent_leg = int((call.ended - call.agent_connected).total_seconds()) if call.agent_connected else 0
        body = {
            "callID": call.call_id,
            "callLogID": call.log_id,
            "callbackType": "terminal",
            "event": "call-ended",
            "agentID": call.agent["agentID"],
            "agentUsername": call.agent["agentUsername"],
            "agentNum": call.agent["agentNum"],
            "customerNum": call.customer_number,
            "virtualNum": self.settings["virtual_number"],
            "callCreated": _iso(call.created),
            "callStarted": _iso(call.started),
            "callEnded": _iso(call.ended),
            "callDisposed": _iso(call.disposed),
            "callbackTime": None,
            "callDirection": "outbound",
            "talktime": talktime,
            "callDuration": int((call.ended - call.created).total_seconds()) if call.ended else None,
            "parentDisposition": None,
            "disposition": call.disposition,
            "notes": call.notes,
            "status": status,
            "recordingUrl": f"{self.settings['recording_base']}{call.sid}.mp3" if call.started else None,
            "legDetails": {
                "leg0Status": LEG_STATUS["completed"] if call.agent_connected else LEG_STATUS["failed"],
                "leg0Duration": agent_leg,
                "leg1Status": LEG_STATUS.get(call.end_status, LEG_STATUS["failed"]),
                "leg1Duration": talktime,
            },
            "customFieldNames": dict(call.custom_field_names),
            "customFields": dict(call.custom_fields),
        }
        call.callbacks.append("call-ended:disposed" if call.disposed else "call-ended")
        # seed 000/002: "Ryng will retry the callback at 1-minute intervals up to two more times."
        self.emulator.send_callback(call.terminal_url, body, label="call-ended", retries=2, interval=60)

    # -- End Preview Call (seed 001) ----------------------------------------------------------------
    def end_preview_call(self, req: Request, call_id: str) -> Response:
        if not self._authorized(req):
            return json_response(UNAUTHORIZED, 403)
        log_id = _as_int(req.param("logID"))
        disposition = req.param("dispositionName")
        notes = req.param("notes")
        # All three are required (seed 001). Empty notes are allowed: the seed's terminal example
        # carries "notes": "". Any refusal is the one documented 500.
        if log_id is None or not isinstance(disposition, str) or not disposition.strip():
            return json_response(DISPOSE_FAILED, 500)
        if not isinstance(notes, str):
            return json_response(DISPOSE_FAILED, 500)
        number = _as_int(call_id)
        with self.lock:
            call = self.calls.get(number) if number is not None else None
            if call is None or call.log_id != log_id or call.disposed is not None:
                return json_response(DISPOSE_FAILED, 500)
            now = self._platform_now(call)
            if call.state != "ended":
                # Ended by the agent: before the customer answered it counts as unanswered.
                call.end_status = "completed" if call.state == "connected" else "no-answer"
                call.state = "ended"
                call.ended = now
            call.disposed = now
            call.disposition = disposition
            call.notes = notes
            for timer in call.timers:
                timer.cancel()
            # Always a terminal callback on the PATCH: it is the one carrying the disposition.
            self._send_terminal(call)
        return json_response(DISPOSED)

    # -- Append Campaign (seed 002) -----------------------------------------------------------------
    def append_campaign(self, req: Request, campaign_id: str) -> Response:
        if not self._authorized(req):
            return json_response(UNAUTHORIZED, 403)
        number = _as_int(campaign_id)
        if number is None:
            return json_response(CAMPAIGN_FAILED, 500)
        ctype = req.header("Content-Type").lower()
        try:
            if ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
                batch = self._campaign_from_form(req)
            else:
                batch = self._campaign_from_json(req)
        except CampaignError:
            return json_response(CAMPAIGN_FAILED, 500)
        with self.lock:
            campaign = self.campaigns.setdefault(
                number,
                {
                    "campaignID": number,
                    "name": f"Campaign::{number}",  # seed 002's default name
                    "customFieldNames": {},
                    "connectCallbackUrl": "",
                    "terminalCallbackUrl": "",
                    "appends": 0,
                    "leads": [],
                },
            )
            campaign["appends"] += 1
            for key in ("name", "connectCallbackUrl", "terminalCallbackUrl"):
                if batch.get(key):
                    campaign[key] = batch[key]
            campaign["customFieldNames"].update(batch["customFieldNames"])
            for lead in batch["leads"]:
                campaign["leads"].append({**lead, "append": campaign["appends"]})
        return json_response(PROCESSING)

    def _campaign_from_form(self, req: Request) -> dict[str, Any]:
        """form-data: a ``campaign-sheet`` CSV and ``agents`` (usernames, repeated or comma
        separated, or ``in-file``; absent = all agents)."""
        try:
            fields, files = req.form()
        except Exception as exc:  # the core raises BadRequest; email parsing can raise others
            raise CampaignError(str(exc)) from exc
        if "campaign-sheet" not in files:
            raise CampaignError("campaign-sheet is required")
        agents = _split_agents(fields.get("agents"))
        in_file = [a.lower() for a in agents] == ["in-file"]
        header, rows = _read_sheet(files["campaign-sheet"][1])
        lower = [h.strip().lower() for h in header]
        if "number" not in lower:
            raise CampaignError("the sheet has no number column")
        number_at = lower.index("number")
        agent_at = next((lower.index(n) for n in ("agents", "agent", "agentsassigned") if n in lower), None)
        if in_file and agent_at is None:
            raise CampaignError("agents=in-file needs an agents column")
        # seed 002: agents is required "if only one lead, or for in-file mapping".
        if len(rows) == 1 and not agents:
            raise CampaignError("a one-lead sheet needs agents")
        names, positions = _sheet_custom_fields(header, skip={number_at, agent_at})
        mapping = "inline" if in_file else ("global" if agents else "all-agents")
        leads = []
        for row in rows:
            cells = row + [""] * (len(header) - len(row))
            if not cells[number_at].strip():
                raise CampaignError("a row has no number")
            leads.append(
                {
                    "number": cells[number_at].strip(),
                    "agentMapping": mapping,
                    "agents": _split_agents(cells[agent_at]) if in_file and agent_at is not None else agents,
                    "customFields": {key: cells[at] for key, at in positions.items() if cells[at] != ""},
                    "source": "csv",
                }
            )
        return {"customFieldNames": names, "leads": leads}

    def _campaign_from_json(self, req: Request) -> dict[str, Any]:
        try:
            body = json.loads(req.body)
        except ValueError as exc:  # seed 002's literal "global"/"inline"/"all-agents" lands here
            raise CampaignError("malformed JSON") from exc
        if not isinstance(body, dict):
            raise CampaignError("the body is not an object")
        mapping = body.get("agentMapping", "all-agents")
        if mapping not in AGENT_MAPPINGS:
            raise CampaignError("unknown agentMapping")
        agents = body.get("agents")
        if agents is not None and (
            not isinstance(agents, list) or not all(isinstance(a, str) for a in agents)
        ):
            raise CampaignError("agents must be a list of usernames")
        if mapping == "global" and not agents:
            raise CampaignError("agentMapping global needs agents")
        names = body.get("customFieldNames") or {}
        if not isinstance(names, dict) or not all(
            CUSTOM_FIELD_NAME_KEY.match(k) and isinstance(v, str) for k, v in names.items()
        ):
            raise CampaignError("customFieldNames keys must be customField{N}Name")
        data = body.get("customerData")
        if not isinstance(data, dict):
            raise CampaignError("customerData is required")
        rows = data.get("jsonData")
        if not isinstance(rows, list) or not rows:
            raise CampaignError("jsonData must be a non-empty list")
        leads = []
        for row in rows:
            if not isinstance(row, dict):
                raise CampaignError("a jsonData row is not an object")
            number = row.get("number")
            if not isinstance(number, str) or not number.strip():
                raise CampaignError("a jsonData row has no number")
            if mapping == "global":
                lead_agents = list(agents or [])
            elif mapping == "inline":
                # "fetched from the agentsAssigned parameter within jsonData, or from within the
                # selected campaign": a row without it keeps the campaign's own assignment ([]).
                lead_agents = _split_agents(row.get("agentsAssigned"))
            else:
                lead_agents = []
            leads.append(
                {
                    "number": number.strip(),
                    "agentMapping": mapping,
                    "agents": lead_agents,
                    "customFields": {
                        k: str(v) for k, v in row.items() if CUSTOM_FIELD_KEY.match(k) and v is not None
                    },
                    "source": "json",
                }
            )
        for key in ("name", "connectCallbackUrl", "terminalCallbackUrl"):
            value = body.get(key) if key == "name" else data.get(key)
            if value is not None and not isinstance(value, str):
                raise CampaignError(f"{key} must be text")
        return {
            "name": body.get("name") or "",
            "connectCallbackUrl": data.get("connectCallbackUrl") or "",
            "terminalCallbackUrl": data.get("terminalCallbackUrl") or "",
            "customFieldNames": dict(names),
            "leads": leads,
        }

    # -- control API ------------------------------------------------------------------------------
    def control_calls(self, req: Request) -> Response:
        with self.lock:
            return json_response([call.public() for call in self.calls.values()])

    def control_call(self, req: Request, call_id: str) -> Response:
        with self.lock:
            call = self.calls.get(int(call_id))
            if call is None:
                return json_response({"error": "unknown call"}, 404)
            return json_response(call.public())

    def control_hangup(self, req: Request, call_id: str) -> Response:
        """The customer hangs up now: a connected call completes; a ringing one ends unanswered."""
        with self.lock:
            call = self.calls.get(int(call_id))
            if call is None:
                return json_response({"error": "unknown call"}, 404)
            if call.state == "ended":
                return json_response({"error": "call already ended"}, 409)
            for timer in call.timers:
                timer.cancel()
            self._end(call, "completed" if call.state == "connected" else "no-answer")
            return json_response(call.public())

    def control_campaigns(self, req: Request) -> Response:
        with self.lock:
            return json_response(
                [
                    {k: v for k, v in campaign.items() if k != "leads"}
                    | {"leadCount": len(campaign["leads"])}
                    for campaign in self.campaigns.values()
                ]
            )

    def control_leads(self, req: Request, campaign_id: str) -> Response:
        with self.lock:
            campaign = self.campaigns.get(int(campaign_id))
            if campaign is None:
                return json_response({"error": "unknown campaign"}, 404)
            return json_response(json.loads(json.dumps(campaign)))

    def control_agents(self, req: Request) -> Response:
        with self.lock:
            return json_response(list(self.agents.values()))

    def control_add_agent(self, req: Request) -> Response:
        data = req.json({}) or {}
        agent_id = _as_int(data.get("agentID"))
        if agent_id is None:
            return json_response({"error": "agentID (int) is required"}, 400)
        agent = self._agent(agent_id)
        agent.update({k: str(data[k]) for k in ("agentUsername", "agentNum") if data.get(k)})
        with self.lock:
            self.agents[agent_id] = agent
        return json_response(agent)

    def control_config(self, req: Request) -> Response:
        with self.lock:
            return json_response(self.settings)

    def control_set_config(self, req: Request) -> Response:
        data = req.json({}) or {}
        unknown = sorted(set(data) - set(DEFAULT_SETTINGS))
        if unknown:
            return json_response({"error": f"unknown ryng settings {unknown}"}, 400)
        with self.lock:
            for key, value in data.items():
                self.settings[key] = type(DEFAULT_SETTINGS[key])(value)
            return json_response(self.settings)


def _read_sheet(raw: bytes) -> tuple[list[str], list[list[str]]]:
    """The CSV's header and non-blank rows; a BOM (Excel) is tolerated."""
    text = raw.decode("utf-8-sig", "replace")
    try:
        lines = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as exc:
        raise CampaignError(f"unreadable CSV: {exc}") from exc
    if len(lines) < 2:
        raise CampaignError("the sheet has no rows")
    return lines[0], lines[1:]


def _sheet_custom_fields(header: list[str], skip: set[int | None]) -> tuple[dict[str, str], dict[str, int]]:
    """Every other column is a custom field. A ``customField{N}`` header keeps its number; other
    headers are numbered in order and their header becomes ``customField{N}Name`` (undocumented:
    the seed does not describe the sheet's columns)."""
    names: dict[str, str] = {}
    positions: dict[str, int] = {}
    taken = {int(m.group(1)) for h in header if (m := CUSTOM_FIELD_KEY.match(h.strip()))}
    next_n = 1
    for at, title in enumerate(header):
        if at in skip:
            continue
        match = CUSTOM_FIELD_KEY.match(title.strip())
        if match:
            positions[f"customField{match.group(1)}"] = at
            continue
        while next_n in taken:
            next_n += 1
        taken.add(next_n)
        positions[f"customField{next_n}"] = at
        names[f"customField{next_n}Name"] = title.strip()
    return names, positions

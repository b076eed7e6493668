"""Huawei CC-Gateway (AgentGateway) emulator: sign-in with rotating GUIDs, the event long poll,
preview offers and previewed outbound calls.

Faithful to ``seeds/003`` (Making a Previewed Outbound Call) and ``telephony.md``; everything those
pages leave open is a choice written down here and in ``docs/emulators-huawei.md``.

Envelope: every answer is HTTP 200 ``{"message", "retcode", "result"}``; ``retcode "0"`` is success,
business failures are other retcodes (only a scripted fault gives another HTTP status).

Retcodes returned, and when (codes from the CC-Gateway error-code list, cec_07_0580):

- ``100-001`` sign-in without ``password`` or ``phonenum``;
  ``100-011`` sign-in with an ``agenttype``/``status`` that is not a number or a status we emulate;
- ``100-004`` sign-in with an agent id not in ``config.huawei_agents`` or the wrong password;
- ``100-002`` sign-in while already signed in (``.../forcelogin`` takes over);
- ``100-006`` the agent is not signed in, or header ``guid`` is missing, unknown, or retired longer
  than ``huawei_guid_grace_seconds`` ago (the gateway can tie the request to no session);
- ``000-003`` header ``guid`` is a live GUID of *another* agent ("no permission to invoke the
  interface" for this agent id);
- ``000-002`` malformed JSON or missing/malformed ``called``/``callcontrolid``;
- ``200-001`` ``called`` is not one of the offered ``dialeddigits``;
- ``200-036`` ``callcontrolid`` is well formed but no such offer is pending for the agent (never
  offered, already dialed, or withdrawn), or the agent already has a call;
- ``100-007`` a scripted outcome ``error`` on previewCallout (gateway internal error, retryable: the
  offer stays pending);
- ``100-010`` logout while the agent has a call ("state error during sign-out");
- ``200-017`` release without a call.

Time: rotation, grace and idle sign-out are platform seconds scaled by the clock; the poll hold is
real seconds (it only paces loops). Call progress runs on the clock per the scripted
:class:`~emulators.core.Outcome`.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from emulators.core import BadRequest, Outcome, Platform, Request, Response, Router, json_response

PREFIX = "/agentgateway/resource"
AGENT = r"(?P<agentid>[^/]+)"
MAX_CALL_DATA = 16 * 1024  # telephony.md: callData "opaque, up to 16 KB"

# Sign-in ``status`` values we emulate (telephony.md: 4 = idle). 3 = busy and 5 = after-call work
# follow the CTI agent-state numbering; unconfirmed for sign-in, so anything else is refused.
STATUS_BUSY, STATUS_IDLE, STATUS_WORK = 3, 4, 5


@dataclass
class PreviewRecord:
    """One record of a loaded preview campaign."""

    numbers: list[str]
    call_data: str = ""
    agent: str = ""  # "" = any agent

    @property
    def extended(self) -> bool:
        return len(self.numbers) > 1


@dataclass
class Offer:
    controlid: str
    record: PreviewRecord


@dataclass
class HuaweiCall:
    callid: str
    called: str
    caller: str
    outcome: Outcome
    talking: bool = False
    ended: bool = False
    timers: list[threading.Timer] = field(default_factory=list)


@dataclass
class AgentSession:
    agent_id: str
    phone: str
    guid: str
    issued_at: float  # time.monotonic() of the current GUID
    last_poll: float
    autoenteridle: bool = True
    ready: bool = True
    work: bool = False  # after-call work (autoenteridle false)
    active: bool = True
    polling: int = 0  # polls being held right now count as activity
    rotate_requested: bool = False
    retired: dict[str, float] = field(default_factory=dict)  # old GUID -> monotonic expiry
    events: deque[dict[str, Any]] = field(default_factory=deque)
    offer: Offer | None = None
    call: HuaweiCall | None = None
    after_call_ready: bool | None = None  # sayfree/saybusy during a call: what happens after it
    cond: threading.Condition | None = None


def envelope(retcode: str = "0", message: str = "", result: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "retcode": retcode}
    if result is not None:
        body["result"] = result
    body.update(extra)
    return body


def answer(
    retcode: str = "0", message: str = "", result: Any = None, headers: list[tuple[str, str]] | None = None
) -> Response:
    # Business failures are HTTP 200 with another retcode (telephony.md).
    return json_response(envelope(retcode, message, result), headers=headers)


def _new_guid() -> str:
    # The seed shows GUIDs as "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx.AgentGateway1".
    return f"{uuid.uuid4()}.AgentGateway1"


def _set_guid(guid: str) -> list[tuple[str, str]]:
    return [("Set-GUID", f"JSESSIONID={guid}")]


class HuaweiEmulator(Platform):
    """The CC-Gateway agent interface. State lives under ``self.lock``; each signed-in agent has a
    ``threading.Condition`` on that lock that wakes its held event polls."""

    name = "huawei"
    prefix = PREFIX

    def __init__(self, emulator: Any):
        super().__init__(emulator)
        self.reset()

    # -- routes ----------------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        p = PREFIX
        self.route(router, "PUT", rf"{p}/onlineagent/{AGENT}", self._sign_in)
        self.route(router, "PUT", rf"{p}/onlineagent/{AGENT}/forcelogin", self._force_login)
        self.route(router, "DELETE", rf"{p}/onlineagent/{AGENT}/logout", self._logout)
        self.route(router, "POST", rf"{p}/onlineagent/{AGENT}/sayfree", self._say_free)
        self.route(router, "POST", rf"{p}/onlineagent/{AGENT}/saybusy", self._say_busy)
        self.route(router, "GET", rf"{p}/agentevent/{AGENT}", self._poll)
        self.route(router, "PUT", rf"{p}/voicecall/{AGENT}/previewCallout", self._preview_callout)
        self.route(router, "DELETE", rf"{p}/voicecall/{AGENT}/release", self._release)
        self.route(router, "GET", rf"{p}/calldata/{AGENT}/allcallinfoEx/(?P<workno>[^/]+)", self._call_ids)
        self.route(
            router, "GET", rf"{p}/calldata/{AGENT}/callinfobycallid/(?P<callid>[^/]+)", self._call_info
        )
        # Control API: platform "control" so faults and the request log leave it alone.
        router.add("POST", r"/_emulator/huawei/campaigns", self._load_campaign)
        router.add("GET", r"/_emulator/huawei/campaigns", self._list_campaign)
        router.add("GET", r"/_emulator/huawei/agents", self._list_agents)
        router.add("POST", rf"/_emulator/huawei/agents/{AGENT}/rotate-guid", self._force_rotate)
        router.add("POST", rf"/_emulator/huawei/agents/{AGENT}/signout", self._force_signout)
        router.add("POST", rf"/_emulator/huawei/agents/{AGENT}/state", self._force_state)

    def reset(self) -> None:
        with self.lock:
            for session in getattr(self, "sessions", {}).values():
                self._end_session(session)
            self.sessions: dict[str, AgentSession] = {}
            self.records: deque[PreviewRecord] = deque()
            # telephony.md's example controlid is "1536"; call ids look like "1455885056-1095".
            self.controlids = itertools.count(1536)
            self.callids = itertools.count(1095)

    # -- sessions and auth ---------------------------------------------------------------------
    def _now(self) -> float:
        return time.monotonic()

    def _expire_idle(self, agent_id: str) -> None:
        """telephony.md: an agent that does not poll for ~2 minutes is signed out. Checked lazily
        on every request for the agent (and by the control listing); a held poll is activity."""
        session = self.sessions.get(agent_id)
        if session is None or session.polling:
            return
        idle = self.clock.real(self.config.huawei_idle_signout_seconds)
        if self._now() - session.last_poll > idle:
            self._sign_out(session)

    def _guid_owner(self, guid: str) -> AgentSession | None:
        now = self._now()
        for session in self.sessions.values():
            if guid == session.guid or session.retired.get(guid, 0.0) > now:
                return session
        return None

    def _authorize(self, req: Request, agent_id: str) -> tuple[AgentSession | None, Response | None]:
        """The session for ``agent_id`` when header ``guid`` is its current GUID or a retired one
        still within the grace; otherwise the documented refusal."""
        self._expire_idle(agent_id)
        session = self.sessions.get(agent_id)
        if session is None:
            return None, answer("100-006", "The agent does not sign in.")
        guid = req.header("guid").strip()
        if guid and self._guid_owner(guid) is session:
            return session, None
        owner = self._guid_owner(guid) if guid else None
        if owner is not None:
            return None, answer("000-003", "No permission to invoke the interface.")
        return None, answer("100-006", "The agent does not sign in.")

    def _sign_in(self, req: Request, agentid: str) -> Response:
        return self._do_sign_in(req, agentid, force=False)

    def _force_login(self, req: Request, agentid: str) -> Response:
        return self._do_sign_in(req, agentid, force=True)

    def _do_sign_in(self, req: Request, agent_id: str, *, force: bool) -> Response:
        try:
            body = req.json({}) or {}
        except BadRequest:
            return answer("100-001", "The sign-in parameter is left empty or is invalid.")
        if not isinstance(body, dict) or not body.get("password") or not body.get("phonenum"):
            return answer("100-001", "The sign-in parameter is left empty or is invalid.")
        try:
            status = int(body.get("status", STATUS_IDLE))
            int(body.get("agenttype", 4))
        except (TypeError, ValueError):
            return answer("100-011", "The parameter is invalid when the agent signs in.")
        if status not in (STATUS_BUSY, STATUS_IDLE, STATUS_WORK):
            return answer("100-011", "The parameter is invalid when the agent signs in.")
        if agent_id not in self.config.huawei_agents or body["password"] != self.config.huawei_password:
            return answer("100-004", "The username or password entered for sign-in is incorrect.")
        with self.lock:
            self._expire_idle(agent_id)
            old = self.sessions.get(agent_id)
            if old is not None:
                if not force:
                    return answer("100-002", "The agent has signed in.")
                # forcelogin takes over: the old session and all its GUIDs die with it.
                self._sign_out(old)
            now = self._now()
            session = AgentSession(
                agent_id=agent_id,
                phone=str(body["phonenum"]),
                guid=_new_guid(),
                issued_at=now,
                last_poll=now,
                autoenteridle=_truthy(body.get("autoenteridle", True)),
                ready=status == STATUS_IDLE,
                work=status == STATUS_WORK,
            )
            session.cond = threading.Condition(self.lock)
            self.sessions[agent_id] = session
            self._dispatch_offers()
            result = {"workno": agent_id, "mediatype": "TFF"}
            return answer("0", "", result, headers=_set_guid(session.guid))

    def _sign_out(self, session: AgentSession) -> None:
        """End a session (logout, forcelogin, idle, control). A pending offer goes back to the
        *back* of the campaign queue; a live call is dropped without events (nobody can poll)."""
        if self.sessions.get(session.agent_id) is session:
            del self.sessions[session.agent_id]
        if session.offer is not None:
            self.records.append(session.offer.record)
            session.offer = None
        self._end_session(session)

    def _end_session(self, session: AgentSession) -> None:
        session.active = False
        if session.call is not None:
            self._stop_call(session.call)
            session.call = None
        session.events.clear()
        if session.cond is not None:
            session.cond.notify_all()

    def _logout(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            if session.call is not None:
                # telephony.md: sign-out is refused while talking (cec_07_0580: 100-010).
                return answer("100-010", "A state error occurs during sign-out.")
            self._sign_out(session)
            return answer("0")

    def _say_free(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            if session.call is not None:
                session.after_call_ready = True  # takes effect when the call ends
                return answer("0")
            self._go_idle(session, "AgentState_Ready")
            return answer("0")

    def _say_busy(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            if session.call is not None:
                session.after_call_ready = False
                return answer("0")
            self._go_busy(session, "AgentState_SetNotReady_Success")
            return answer("0")

    def _go_idle(self, session: AgentSession, event_type: str) -> None:
        session.ready, session.work = True, False
        self._emit(session, event_type, None)
        self._dispatch_offers()

    def _go_busy(self, session: AgentSession, event_type: str) -> None:
        session.ready = False
        if session.offer is not None:
            # No reject API exists: going busy withdraws the offer and the record goes to the
            # back of the queue, so saybusy + sayfree is how a client skips a record.
            self.records.append(session.offer.record)
            session.offer = None
        self._emit(session, event_type, None)

    # -- the event long poll -----------------------------------------------------------------------
    def _poll(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            used_guid = req.header("guid").strip()
            session.polling += 1
            session.last_poll = self._now()
            deadline = self._now() + max(0.0, float(self.config.huawei_poll_hold_seconds))
            try:
                while session.active and not session.events:
                    remaining = deadline - self._now()
                    if remaining <= 0:
                        break
                    assert session.cond is not None
                    session.cond.wait(remaining)
            finally:
                session.polling -= 1
                session.last_poll = self._now()
            if not session.active:
                return answer("100-006", "The agent does not sign in.")
            headers = self._maybe_rotate(session, used_guid)
            event = session.events.popleft() if session.events else {}
            # One event per answer; "event" is an empty object when nothing happened.
            return json_response({"message": "", "retcode": "0", "event": event}, headers=headers)

    def _maybe_rotate(self, session: AgentSession, used_guid: str) -> list[tuple[str, str]]:
        """telephony.md: a new GUID about every 60 s, as ``Set-GUID`` on an event-poll answer;
        the old one stays valid for the grace. A poll made with a retired GUID is also told the
        current one (our choice: a client that lost an answer catches up on its next poll)."""
        now = self._now()
        for guid, expiry in list(session.retired.items()):
            if expiry <= now:
                del session.retired[guid]
        due = now - session.issued_at >= self.clock.real(self.config.huawei_guid_rotate_seconds)
        if due or session.rotate_requested:
            session.retired[session.guid] = now + self.clock.real(self.config.huawei_guid_grace_seconds)
            session.guid, session.issued_at, session.rotate_requested = _new_guid(), now, False
            return _set_guid(session.guid)
        if used_guid != session.guid:
            return _set_guid(session.guid)
        return []

    def _emit(self, session: AgentSession, event_type: str, content: Any, **extra: Any) -> None:
        event = {"eventType": event_type, "workNo": session.agent_id, "content": content, **extra}
        session.events.append(event)
        assert session.cond is not None
        session.cond.notify_all()

    # -- preview offers ------------------------------------------------------------------------------
    def _dispatch_offers(self) -> None:
        """Hand the next record to every Ready agent with no offer and no call. Records with an
        ``agent`` go only to that agent; the others to whichever Ready agent asks first."""
        for session in list(self.sessions.values()):
            if not session.ready or session.work or session.offer is not None or session.call is not None:
                continue
            record = next((r for r in self.records if r.agent in ("", session.agent_id)), None)
            if record is None:
                continue
            self.records.remove(record)
            session.offer = Offer(str(next(self.controlids)), record)
            event_type = "AgentEvent_Preview_CallOut_Ex" if record.extended else "AgentEvent_Preview_CallOut"
            self._emit(
                session,
                event_type,
                {
                    "controlid": session.offer.controlid,
                    "dialeddigits": ",".join(record.numbers),
                    "callData": record.call_data,
                },
            )

    # -- calls ---------------------------------------------------------------------------------------
    def _preview_callout(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            try:
                body = req.json({}) or {}
            except BadRequest:
                body = None
            called, controlid = _callout_params(body)
            if called is None or controlid is None:
                return answer("000-002", "The interface parameter is invalid.")
            offer = session.offer
            if session.call is not None or offer is None or offer.controlid != controlid:
                return answer("200-036", "No previewed outbound call is pending for this control id.")
            if called not in offer.record.numbers:
                return answer("200-001", "The called number is not in the preview event's dialeddigits.")
            outcome = self.emulator.outcomes.take(self.name, called)
            if outcome.result == "error":
                return answer("100-007", "An exception occurs during the agent's operation.")
            call = HuaweiCall(
                callid=f"{int(time.time())}-{next(self.callids)}",
                called=called,
                caller=session.phone,
                outcome=outcome,
            )
            session.offer, session.call, session.after_call_ready = None, call, None
            session.ready = False
            self._schedule(session, call, 0.0, self._agent_alerting)
            return answer("0", "", call.callid)

    def _schedule(self, session: AgentSession, call: HuaweiCall, seconds: float, step: Any) -> None:
        call.timers.append(self.clock.later(seconds, self._step, session, call, step))

    def _step(self, session: AgentSession, call: HuaweiCall, step: Any) -> None:
        with self.lock:
            # A released call or a dead session ignores the steps still on the clock.
            if call.ended or session.call is not call or not session.active:
                return
            step(session, call)

    def _agent_alerting(self, session: AgentSession, call: HuaweiCall) -> None:
        self._emit(session, "AgentOther_PhoneAlerting", None)  # the agent's phone rings
        self._schedule(session, call, call.outcome.agent_ring_seconds, self._agent_offhook)

    def _agent_offhook(self, session: AgentSession, call: HuaweiCall) -> None:
        self._emit(session, "AgentOther_PhoneOffhook", None)
        if call.outcome.result == "fail":
            # A network failure: the customer leg never starts.
            self._call_out_fail(session, call)
            return
        self._emit(
            session,
            "AgentEvent_Customer_Alerting",
            {"callid": call.callid, "caller": call.caller, "called": call.called},
        )
        self._schedule(session, call, call.outcome.ring_seconds, self._customer_answer)

    def _customer_answer(self, session: AgentSession, call: HuaweiCall) -> None:
        if call.outcome.result != "answer":
            self._call_out_fail(session, call)
            return
        call.talking = True
        self._emit(
            session,
            "AgentEvent_Talking",
            {
                "caller": call.caller,
                "callid": call.callid,
                "called": call.called,
                "feature": 7,  # outbound call (CTI call-feature numbering)
                "type": "voice",
                "mediaAbility": 0,  # audio only
            },
        )
        if call.outcome.talk_seconds is not None:
            self._schedule(session, call, float(call.outcome.talk_seconds), self._customer_hangup)

    def _call_out_fail(self, session: AgentSession, call: HuaweiCall) -> None:
        # telephony.md: content is the bare call id. Extension (documented): a top-level "reason"
        # ("no_answer" | "busy" | "fail") so a client can tell busy from no answer.
        self._emit(session, "AgentEvent_Call_Out_Fail", call.callid, reason=call.outcome.result)
        self._finish_call(session, call)

    def _customer_hangup(self, session: AgentSession, call: HuaweiCall) -> None:
        self._release_events(session, call)

    def _release_events(self, session: AgentSession, call: HuaweiCall) -> None:
        # telephony.md's order "after the call", whichever side hung up.
        self._emit(session, "AgentEvent_Call_Release", call.callid)
        self._emit(session, "AgentEvent_Customer_Release", {"callid": call.callid})
        self._finish_call(session, call)

    def _finish_call(self, session: AgentSession, call: HuaweiCall) -> None:
        self._stop_call(call)
        session.call = None
        ready = session.after_call_ready
        if ready is None:
            ready = session.autoenteridle
        session.after_call_ready = None
        if ready:
            session.ready, session.work = True, False
            self._emit(session, "AgentState_Ready", None)
            self._dispatch_offers()
        else:
            session.ready, session.work = False, True
            self._emit(session, "AgentState_Work", None)

    def _stop_call(self, call: HuaweiCall) -> None:
        call.ended = True
        for timer in call.timers:
            timer.cancel()

    def _release(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            if session.call is None:
                return answer("200-017", "There is no call to release.")
            self._release_events(session, session.call)
            return answer("0")

    def _call_ids(self, req: Request, agentid: str, workno: str) -> Response:
        """Querying Call IDs of a Specified Agent (cec_07_1267): ``result`` is a list of call ids."""
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            target = self.sessions.get(workno)
            if target is None:
                return answer("100-006", "The agent does not sign in.")
            return answer("0", "", [target.call.callid] if target.call else [])

    def _call_info(self, req: Request, agentid: str, callid: str) -> Response:
        """Querying Call Information by Call ID (cec_07_1266), the fields we can fill."""
        with self.lock:
            session, refused = self._authorize(req, agentid)
            if session is None:
                return refused  # type: ignore[return-value]
            call = session.call
            if call is None or call.callid != callid:
                return answer("000-002", "The interface parameter is invalid.")
            return answer(
                "0",
                "",
                {"callfeature": 7, "callid": call.callid, "caller": call.caller, "called": call.called},
            )

    # -- control API ---------------------------------------------------------------------------------
    def _load_campaign(self, req: Request) -> Response:
        data = req.json({}) or {}
        rows = data.get("records") if isinstance(data, dict) else data
        if not isinstance(rows, list) or not rows:
            raise BadRequest("records must be a non-empty list")
        records = [_record(row) for row in rows]
        with self.lock:
            if isinstance(data, dict) and data.get("replace"):
                self.records.clear()
            self.records.extend(records)
            self._dispatch_offers()
            return json_response({"loaded": len(records), "waiting": len(self.records)})

    def _list_campaign(self, req: Request) -> Response:
        with self.lock:
            return json_response(
                [{"numbers": r.numbers, "callData": r.call_data, "agent": r.agent} for r in self.records]
            )

    def _list_agents(self, req: Request) -> Response:
        with self.lock:
            now = self._now()
            rows = {}
            for agent_id in self.config.huawei_agents:
                self._expire_idle(agent_id)
                session = self.sessions.get(agent_id)
                rows[agent_id] = _describe(session, now) if session else {"signed_in": False}
            return json_response(rows)

    def _force_rotate(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session = self.sessions.get(agentid)
            if session is None:
                return json_response({"error": "agent not signed in"}, 404)
            session.rotate_requested = True
            return json_response({"rotate_requested": True})

    def _force_state(self, req: Request, agentid: str) -> Response:
        """What a QC inspector (supervisor) forcing the agent busy or idle on the platform does:
        ``{"state": "busy"}`` emits ``AgentState_Force_SetNotReady`` (the pending offer is
        withdrawn, as on saybusy), ``{"state": "idle"}`` ``AgentState_Force_Ready`` (an offer
        follows). During a call the event is emitted at once and the state takes effect when
        the call ends (our choice; the vendor pages are silent)."""
        data = req.json({}) or {}
        state = data.get("state") if isinstance(data, dict) else None
        if state not in ("busy", "idle"):
            raise BadRequest("state must be 'busy' or 'idle'")
        with self.lock:
            session = self.sessions.get(agentid)
            if session is None:
                return json_response({"error": "agent not signed in"}, 404)
            event_type = "AgentState_Force_Ready" if state == "idle" else "AgentState_Force_SetNotReady"
            if session.call is not None:
                session.after_call_ready = state == "idle"
                self._emit(session, event_type, None)
            elif state == "idle":
                self._go_idle(session, event_type)
            else:
                self._go_busy(session, event_type)
            return json_response({"state": state, "event": event_type})

    def _force_signout(self, req: Request, agentid: str) -> Response:
        with self.lock:
            session = self.sessions.get(agentid)
            if session is None:
                return json_response({"error": "agent not signed in"}, 404)
            self._sign_out(session)
            return json_response({"signed_out": True})


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "0", "no", "")
    return bool(value)


def _callout_params(body: Any) -> tuple[str | None, str | None]:
    """(called, callcontrolid) or Nones. ``callcontrolid`` is a long per seed 003, yet its own
    example sends the string "11776": both are accepted, digits only."""
    if not isinstance(body, dict):
        return None, None
    called, controlid = body.get("called"), body.get("callcontrolid")
    if not isinstance(called, str) or not called.strip():
        called = None
    if isinstance(controlid, bool):
        controlid = None
    elif isinstance(controlid, int) and controlid >= 0:
        controlid = str(controlid)
    elif isinstance(controlid, str) and controlid.strip().isdigit():
        controlid = str(int(controlid.strip()))
    else:
        controlid = None
    return (called.strip() if called else None), controlid


def _record(row: Any) -> PreviewRecord:
    if not isinstance(row, dict):
        raise BadRequest("each record must be an object")
    numbers = row.get("numbers") or ([row["number"]] if row.get("number") else [])
    if isinstance(numbers, str):
        numbers = [n for n in numbers.split(",") if n.strip()]
    numbers = [str(n).strip() for n in numbers]
    if not numbers or not all(numbers):
        raise BadRequest("each record needs a number (or numbers)")
    call_data = row.get("callData", "")
    if not isinstance(call_data, str):
        raise BadRequest("callData must be a string")
    if len(call_data.encode()) > MAX_CALL_DATA:
        raise BadRequest("callData is limited to 16 KB")
    return PreviewRecord(numbers=numbers, call_data=call_data, agent=str(row.get("agent") or ""))


def _describe(session: AgentSession, now: float) -> dict[str, Any]:
    offer = session.offer
    call = session.call
    return {
        "signed_in": True,
        "phone": session.phone,
        "ready": session.ready,
        "work": session.work,
        "guid": session.guid,
        "retired_guids": sorted(g for g, expiry in session.retired.items() if expiry > now),
        "seconds_since_poll": round(now - session.last_poll, 3),
        "polling": session.polling,
        "queued_events": len(session.events),
        "offer": None
        if offer is None
        else {
            "controlid": offer.controlid,
            "numbers": offer.record.numbers,
            "callData": offer.record.call_data,
        },
        "call": None
        if call is None
        else {
            "callid": call.callid,
            "called": call.called,
            "talking": call.talking,
            "result": call.outcome.result,
        },
    }

"""Huawei CC-Gateway (AgentGateway) adapter: agent session with a rotating GUID, the event long
poll, preview offers and previewed outbound calls. See ``docs/providers-huawei.md``.

Session: sign-in answers ``Set-GUID: JSESSIONID=<guid>``; every later request sends header
``guid``. In the gateway's dynamic mode the GUID rotates on event-poll answers and the old one
lives on for a grace period (telephony.md), so *every* answer's ``Set-GUID`` is read and stored in
``self.state["guid"]``, which the caller persists (``PlatformSession.state``) so the Celery worker
that dials and the ``run_streams`` loop that polls share one session.

Errors: the gateway answers HTTP 200 with ``retcode`` other than ``"0"``; :data:`RETCODES` turns each
into a :class:`ProviderError` with ``code=<retcode>`` and plain words.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from calls.providers.base import (
    AGENT_CONNECTED,
    AGENT_RINGING,
    CONNECTED,
    CUSTOMER_RINGING,
    ENDED,
    FAILED,
    POLL,
    REASON_BUSY,
    REASON_NO_ANSWER,
    REASON_PLATFORM,
    AgentLogin,
    DialRequest,
    DialResult,
    Offer,
    Provider,
    ProviderError,
    Signal,
    json_object,
)

log = logging.getLogger("calls.providers.huawei")

CONTENT_TYPE = "application/json; charset=UTF-8"
# poll_event stamps each event it hands out with this key: Huawei events carry no id, and an
# event without a call id (AgentOther_PhoneAlerting, AgentState_*) needs one to be told apart.
RECEIPT_KEY = "x-agentdesk-receipt"

# retcode -> (plain words, permanent). Codes from telephony.md and the CC-Gateway error-code list.
RETCODES: dict[str, tuple[str, bool]] = {
    "000-002": ("The telephony gateway rejected the request's parameters.", True),
    "000-003": ("The telephony gateway refused this session (sign-in expired); sign in again.", True),
    "100-001": ("The sign-in details are missing or invalid.", True),
    "100-002": ("The agent is already signed in to the telephony gateway.", True),
    "100-004": ("The telephony agent id or password is wrong.", True),
    "100-006": ("The agent is not signed in to the telephony gateway.", True),
    "100-007": ("The telephony gateway had an internal error; try again.", False),
    "100-010": ("The agent cannot sign out during a call.", True),
    "100-011": ("The telephony gateway rejected the sign-in options.", True),
    "200-001": ("That number is not one the campaign offered for this lead.", True),
    "200-017": ("There is no call to hang up.", True),
    "200-036": ("The preview call could not be placed (gateway code 200-036).", True),
}
# The session is gone: the stored GUID is useless, the engine must sign in again.
SESSION_LOST = {"000-003", "100-006"}

# Call events: eventType -> our call state.
CALL_STATES: dict[str, str] = {
    "AgentOther_PhoneAlerting": AGENT_RINGING,
    "AgentOther_PhoneOffhook": AGENT_CONNECTED,
    "AgentEvent_Customer_Alerting": CUSTOMER_RINGING,
    "AgentEvent_Talking": CONNECTED,
    "AgentEvent_Call_Out_Fail": FAILED,
    "AgentEvent_Call_Release": ENDED,
    "AgentEvent_Customer_Release": ENDED,
}
OFFER_EVENTS = {"AgentEvent_Preview_CallOut", "AgentEvent_Preview_CallOut_Ex"}
# AgentState_* -> agent state (anything else AgentState_* is "other"). Names and meanings as the
# CC-Gateway agent console samples handle them: forced states come from a QC inspector
# (supervisor) on the platform. Only ``ready`` / ``not_ready`` ever move the desk's presence
# (calls.services.agent_apply_platform_state). AgentState_Busy is "into talking status" in
# Huawei's own console sample (other consoles show it as busy): it is the call's doing, so it is
# kept apart as ``busy`` and never takes an agent out of Ready.
AGENT_STATES: dict[str, str] = {
    "AgentState_Ready": "ready",
    "AgentState_Force_Ready": "ready",
    "AgentState_CancelNotReady_Success": "ready",
    "AgentState_CancelRest_Success": "ready",
    "AgentState_CancelWork_Success": "ready",
    "AgentState_SetNotReady_Success": "not_ready",
    "AgentState_Force_SetNotReady": "not_ready",
    "AgentState_SetRest_Success": "not_ready",
    "AgentState_Busy": "busy",
    "AgentState_Work": "work",
    "AgentState_SetWork_Success": "work",
}
# Sign-in ``status`` 4 is idle (telephony.md); anything else signs in not ready.
STATUS_IDLE = 4
# Emulator extension on AgentEvent_Call_Out_Fail (the real event carries only the call id).
FAIL_REASONS = {"busy": REASON_BUSY, "no_answer": REASON_NO_ANSWER, "fail": REASON_PLATFORM}


def parse_set_guid(value: str) -> str:
    """``"JSESSIONID=<guid>"`` (maybe with ``; attributes``) -> ``<guid>``; a bare value as is."""
    first = value.split(";", 1)[0].strip()
    name, sep, rest = first.partition("=")
    return rest.strip() if sep and name.strip().upper() == "JSESSIONID" else first


class HuaweiProvider(Provider):
    """One agent session on a CC-Gateway. ``state["guid"]`` is the session."""

    platform = "huawei"
    label = "Huawei CC-Gateway"
    base_url_hint = "…/agentgateway/resource"
    campaign_ref_hint = "campaign"
    agent_sessions = True
    offers_leads = True
    can_look_up_calls = True
    event_stream = POLL
    identity_fields: ClassVar[Mapping[str, str]] = {
        "ref": "Huawei agent id (workno)",
        "phone": "Huawei phone number",
    }

    @classmethod
    def parse_offer(cls, data: Mapping[str, Any]) -> Offer:
        """A preview event's offer (as :func:`_signal` keeps it): the first of its
        ``dialeddigits``, and ``callData``, which is opaque to the gateway: a JSON object when the
        campaign put one there (its name key becomes the name), else shown as one field. The
        event does not name the campaign."""
        digits = data.get("dialeddigits")
        if isinstance(digits, list | tuple):
            digits = digits[0] if digits else ""
        call_data = data.get("callData")
        fields = json_object(call_data)
        if fields is None:
            text = call_data.strip() if isinstance(call_data, str) else ""
            fields = {"Call data": call_data} if text else {}
        return Offer.from_fields(
            fields, raw_number=str(data.get("number") or digits or ""), name=str(data.get("name") or "")
        )

    @classmethod
    def offer_record(cls, data: Mapping[str, Any]) -> str:
        """A preview event names its offer (``controlid``), never the record: a record the
        gateway puts back (a skip's saybusy sends it to the back of the queue) comes with a new
        controlid. Its numbers and ``callData`` are the record's own, so they name it."""
        digits = data.get("dialeddigits")
        numbers = sorted(str(d) for d in digits) if isinstance(digits, list | tuple) else [str(digits or "")]
        text = json.dumps([numbers, str(data.get("callData") or "")])
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def session_lost(self, error: ProviderError) -> bool:
        # 000-003 / 100-006: the gateway dropped the session (it signs out an agent that has not
        # polled for 2 minutes, telephony.md); the GUID is useless.
        return error.code in SESSION_LOST

    # -- transport ------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> dict[str, Any]:
        """Send one request with the current GUID; take ``Set-GUID`` from whatever comes back;
        raise :class:`ProviderError` on a transport failure, a non-200 or a retcode other than 0."""
        headers = {"Content-Type": CONTENT_TYPE}
        if self.state.get("guid"):
            headers["guid"] = str(self.state["guid"])
        data = json.dumps(body).encode() if body is not None else None
        response = self.http.request(method, path, headers=headers, data=data, timeout=timeout)
        # Read on EVERY answer, success or not (telephony.md: the GUID rotates on poll answers).
        new_guid = response.headers.get("Set-GUID")
        if new_guid:
            self.state["guid"] = parse_set_guid(new_guid)
        if response.status_code != 200:
            raise self.error(
                f"The telephony gateway answered HTTP {response.status_code}.",
                code=str(response.status_code),
                permanent=response.status_code < 500 and response.status_code not in (408, 429),
                http_status=response.status_code,
            )
        answer = self.http.json(response)
        if not isinstance(answer, dict):
            raise self.error("The telephony gateway sent an unreadable answer.", code="200", http_status=200)
        retcode = str(answer.get("retcode", ""))
        if retcode != "0":
            raise self._retcode_error(retcode, answer)
        return answer

    def _retcode_error(self, retcode: str, answer: Mapping[str, Any]) -> ProviderError:
        message, permanent = RETCODES.get(
            retcode, (f"The telephony gateway refused the request (code {retcode or 'none'}).", True)
        )
        log.info("huawei retcode %s: %s", retcode, str(answer.get("message", ""))[:200])
        if retcode in SESSION_LOST:
            self.state.pop("guid", None)
        return self.error(message, code=retcode, permanent=permanent, http_status=200)

    def _password(self, agent: AgentLogin) -> str:
        return agent.password or str(self.account.credentials.get("agent_password", ""))

    # -- agent session ----------------------------------------------------------------------------
    def sign_in(self, agent: AgentLogin) -> None:
        """Sign in; when the gateway says the agent is already signed in (``100-002``, e.g. a
        session left behind by a crashed process) take it over with ``forcelogin``."""
        options = self.account.options
        body = {
            "password": self._password(agent),
            "phonenum": agent.phone,
            "autoanswer": bool(options.get("huawei_autoanswer", True)),
            # telephony.md: after a call the agent gets AgentState_Ready (autoenteridle true).
            "autoenteridle": bool(options.get("huawei_autoenteridle", True)),
            "releasephone": bool(options.get("huawei_releasephone", False)),
            "agenttype": int(options.get("huawei_agenttype", 4)),
            # 3 = busy: the desk makes the agent Ready explicitly (set_ready) once it is polling.
            "status": int(options.get("huawei_sign_in_status", 3)),
        }
        self.state.pop("guid", None)
        path = f"/onlineagent/{agent.ref}"
        try:
            self._request("PUT", path, body=body)
        except ProviderError as exc:
            if exc.code != "100-002":
                raise
            self._request("PUT", f"{path}/forcelogin", body=body)
        if not self.state.get("guid"):
            raise self.error(
                "The telephony gateway signed the agent in without a session id.", code="no-guid"
            )

    def sign_out(self, agent: AgentLogin) -> None:
        """Log out; an agent the gateway already signed out counts as signed out."""
        try:
            self._request("DELETE", f"/onlineagent/{agent.ref}/logout")
        except ProviderError as exc:
            if exc.code not in SESSION_LOST:
                raise
        self.state.pop("guid", None)

    def signed_in_state(self) -> str:
        status = int(self.account.options.get("huawei_sign_in_status", 3))
        return "ready" if status == STATUS_IDLE else "not_ready"

    def set_ready(self, agent: AgentLogin) -> None:
        self._request("POST", f"/onlineagent/{agent.ref}/sayfree")

    def set_not_ready(self, agent: AgentLogin, reason: str = "") -> None:
        # saybusy takes no reason in the interface we implement; the reason stays ours.
        self._request("POST", f"/onlineagent/{agent.ref}/saybusy")

    def skip(
        self,
        agent: AgentLogin,
        offer: Mapping[str, Any],
        *,
        stay_ready: bool = True,
        retry_at: int | None = None,
    ) -> None:
        """Huawei has no reject API: going busy withdraws the pending offer and going free asks for
        the next one (the emulator re-queues the skipped record at the back; on a real gateway
        what happens to the record is the campaign's configuration). An agent who is not Ready
        stays busy: no sayfree."""
        self.set_not_ready(agent)
        if stay_ready:
            self.set_ready(agent)

    def skip_echoes(self, *, stay_ready: bool = True) -> tuple[str, ...]:
        # saybusy -> AgentState_SetNotReady_Success, sayfree -> AgentState_Ready.
        return ("not_ready", "ready") if stay_ready else ("not_ready",)

    def poll_event(self, agent: AgentLogin, timeout: float | None = None) -> dict[str, Any] | None:
        """One long poll: the event, or ``None`` when the gateway had nothing. ``timeout`` is the
        read timeout and must exceed the gateway's hold (about 10 s); default option
        ``huawei_poll_read_timeout`` or 20 s. The event is stamped with :data:`RECEIPT_KEY`."""
        read = (
            timeout
            if timeout is not None
            else float(self.account.options.get("huawei_poll_read_timeout", 20.0))
        )
        answer = self._request(
            "GET", f"/agentevent/{agent.ref}", timeout=(self.account.connect_timeout, read)
        )
        event = answer.get("event")
        if not isinstance(event, dict) or not event.get("eventType"):
            return None
        event = dict(event)
        event[RECEIPT_KEY] = uuid.uuid4().hex
        return event

    # -- calls ------------------------------------------------------------------------------------
    def dial(self, request: DialRequest) -> DialResult:
        """previewCallout for the offer in ``request.offer``; ``called`` must be one of its
        dialeddigits. A read timeout raises an ``ambiguous`` error: use :meth:`lookup_call`."""
        controlid = str(request.offer.get("controlid", "")).strip()
        if not controlid.isdigit():
            raise self.error("This lead has no Huawei preview offer to dial.", code="no-offer")
        body = {"called": request.number, "callcontrolid": int(controlid)}  # a long (seed 003)
        answer = self._request("PUT", f"/voicecall/{request.agent.ref}/previewCallout", body=body)
        call_id = str(answer.get("result") or "")
        if not call_id:
            raise self.error("The telephony gateway placed the call without a call id.", code="no-callid")
        return DialResult(call_id=call_id, raw=answer)

    def lookup_call(self, request: DialRequest) -> DialResult | None:
        """After an ambiguous previewCallout: the agent's current call to ``request.number``, or
        ``None`` when the agent has no such call. Caveat: a call that went out and already ended
        is invisible here; a redial is still safe because the gateway consumed the offer's
        controlid and answers 200-036 rather than dialing twice."""
        ref = request.agent.ref
        answer = self._request("GET", f"/calldata/{ref}/allcallinfoEx/{ref}")
        call_ids = answer.get("result") or []
        for call_id in call_ids if isinstance(call_ids, list) else []:
            info = self._request("GET", f"/calldata/{ref}/callinfobycallid/{call_id}").get("result") or {}
            if isinstance(info, dict) and str(info.get("called", "")) == request.number:
                return DialResult(call_id=str(call_id), raw=info)
        return None

    def call_live(self, agent: AgentLogin, call_id: str) -> bool:
        """``allcallinfoEx`` lists the agent's current calls only: a released call is gone."""
        ref = agent.ref
        call_ids = self._request("GET", f"/calldata/{ref}/allcallinfoEx/{ref}").get("result") or []
        return str(call_id) in {str(c) for c in call_ids} if isinstance(call_ids, list) else False

    def hang_up(self, agent: AgentLogin, call_id: str, *, log_id: str = "") -> None:
        """release. ``200-017`` (no call) is success: the call already ended and its end events
        are on the stream."""
        try:
            self._request("DELETE", f"/voicecall/{agent.ref}/release")
        except ProviderError as exc:
            if exc.code != "200-017":
                raise

    # -- signals ------------------------------------------------------------------------------------
    def parse(self, payload: Any) -> list[Signal]:
        """One event (as :meth:`poll_event` returns it), or a whole poll answer, or its JSON text.
        An empty poll answer gives no signals; anything unknown gives ``kind="other"``."""
        if isinstance(payload, (str, bytes)):
            if not payload.strip():
                return []
            try:
                payload = json.loads(payload)
            except (ValueError, RecursionError):
                return [Signal(kind="other", key=f"huawei:raw:{_digest(payload)}", raw=payload)]
        if isinstance(payload, dict) and "eventType" not in payload and "event" in payload:
            payload = payload.get("event")
        if not payload:
            return []
        if not isinstance(payload, dict) or not payload.get("eventType"):
            return [Signal(kind="other", key=f"huawei:other:{_digest(payload)}", raw=payload)]
        try:
            return [_signal(payload)]
        except Exception:  # parse never raises (base contract); keep the payload for the record
            log.exception("huawei: could not parse event %s", payload.get("eventType"))
            return [Signal(kind="other", key=f"huawei:other:{_digest(payload)}", raw=payload)]


def _digest(payload: Any) -> str:
    text = payload if isinstance(payload, (str, bytes)) else json.dumps(payload, sort_keys=True, default=str)
    raw = text.encode() if isinstance(text, str) else text
    return hashlib.sha256(raw).hexdigest()[:24]


def _receipt(event: Mapping[str, Any]) -> str:
    """The delivery stamp from :meth:`HuaweiProvider.poll_event`; for a stored payload without one,
    a digest of the event (stable for replays, but equal for identical events)."""
    return str(event.get(RECEIPT_KEY) or _digest(event))


def _call_id(content: Any) -> str:
    if isinstance(content, dict):
        return str(content.get("callid") or content.get("callId") or "")
    if isinstance(content, (str, int)) and not isinstance(content, bool):
        return str(content)
    return ""


def _signal(event: Mapping[str, Any]) -> Signal:
    event_type = str(event["eventType"])
    work_no = str(event.get("workNo", ""))
    content = event.get("content")
    data: dict[str, Any] = {"agent": work_no, "event_type": event_type}
    if event_type in OFFER_EVENTS and isinstance(content, dict):
        controlid = str(content.get("controlid", ""))
        digits = str(content.get("dialeddigits") or "")
        data.update(
            controlid=controlid,
            dialeddigits=[d.strip() for d in digits.split(",") if d.strip()],
            callData=content.get("callData", ""),
        )
        # A controlid names one offer: a stable key per offer.
        return Signal(kind="offer", key=f"huawei:{work_no}:offer:{controlid}", data=data, raw=dict(event))
    if event_type in CALL_STATES:
        call_id = _call_id(content)
        reason = ""
        if event_type == "AgentEvent_Call_Out_Fail":
            # The real event does not say why; without the emulator's "reason" we say no answer.
            reason = FAIL_REASONS.get(str(event.get("reason", "")), REASON_NO_ANSWER)
        # A call passes each event type once, so (call id, event type) names the event; events
        # with no call id (PhoneAlerting/Offhook, content null) use the delivery stamp, and the
        # engine applies them to the agent's live call.
        key = (
            f"huawei:{work_no}:{call_id}:{event_type}"
            if call_id
            else f"huawei:{work_no}:{event_type}:{_receipt(event)}"
        )
        return Signal(
            kind="call",
            key=key,
            call_id=call_id,
            state=CALL_STATES[event_type],
            reason=reason,
            data=data,
            raw=dict(event),
        )
    key = f"huawei:{work_no}:{event_type}:{_receipt(event)}"
    if event_type.startswith("AgentState_"):
        presence = AGENT_STATES.get(event_type, "other")
        data["presence"] = presence
        return Signal(kind="agent", key=key, state=presence, data=data, raw=dict(event))
    return Signal(kind="other", key=key, call_id=_call_id(content), data=data, raw=dict(event))

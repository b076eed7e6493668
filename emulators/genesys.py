"""Genesys Workspace Web Services (GWS) API v2 emulator: REST under ``/api/v2`` plus CometD.

Faithful to ``shared/seeds/004_3fc81fd8164b11b8.txt`` (Dial Preview Record and the CometD
``CallStateChangeMessage`` it triggers) and to the GWS notes in ``shared/telephony.md``. Where the
vendor pages are silent, the choice made here is written down below and in
``docs/emulators-genesys.md``.

Session rules (every ``/api/v2`` request, REST and CometD alike):

- HTTP Basic auth with a user of ``config.genesys_users`` and ``config.genesys_password``;
  missing or wrong: HTTP 401 ``{"statusCode": 20, "statusMessage": ...}``.
- The session is bound to the ``JSESSIONID`` cookie, set on the first authenticated request (and
  again whenever the cookie is missing, unknown or belongs to another user).
- With ``config.genesys_csrf``, every GET answers ``X-CSRF-HEADER: X-CSRF-TOKEN`` and
  ``X-CSRF-TOKEN: <uuid>`` (one token per session); a POST/PUT/DELETE without that header, with
  a token of another session, or on a session created by that very request: HTTP 403 with
  ``statusCode`` 3.

Answers: every JSON body has ``statusCode`` (GWS "Return Values": 0 ok, 1 missing parameter,
2 invalid for the current state, 3 forbidden, 4 internal error, 5 no permission, 6 not found,
20 not authenticated). The vendor pages do not say which HTTP status goes with each code; this
emulator answers 200 for 0, 400 for 1 and 2, 403 for 3 and 5, 500 for 4, 404 for 6, 401 for 20.
HTTP 200 only means "accepted": outcomes arrive over CometD.

Choices where the docs are silent (all in ``docs/emulators-genesys.md``):

- Call progress per scripted :class:`~emulators.core.Outcome`: ``answer`` Dialing (at once) ->
  Ringing (after ``agent_ring_seconds``: the customer's phone rings) -> Established (after
  ``ring_seconds`` more) -> Released (after ``talk_seconds`` more, customer hangs up; never when
  ``talk_seconds`` is null). ``no_answer``: Dialing -> Ringing -> Released. ``busy`` and ``fail``:
  Dialing -> Released. ``error``: the Dial answers ``statusCode`` 4 and no call exists.
- Why a call was released: the Released message's ``extensions`` carries ``CallResult`` with an
  OCS call-result name: ``Answer`` (talked, then someone hung up), ``Busy``, ``NoAnswer``,
  ``GeneralError`` (fail), ``Abandoned`` (the agent hung up before the customer answered).
- Released calls stay listed by ``GET /api/v2/me/calls`` (state ``Released``) for
  ``RELEASED_LINGER_SECONDS`` real seconds, so a client that lost CometD messages can still learn
  how a call ended.
- An empty preview campaign answers ``GetPreviewRecord`` with ``statusCode`` 0 and publishes an
  ``OutboundRecordMessage`` with ``notificationType`` ``NoRecords`` (OCS's "No Records Available").
- ``NotReady`` takes an optional ``reasonCode`` (or ``reason``), echoed as ``userState.reason``.
- Repeating ``StartContactCenterSession`` or ``StartPreviewSession`` is harmless (statusCode 0).
- ``RescheduleRecord`` is acknowledged ``RecordRescheduleAcknowledge``, or
  ``ScheduledRecordRescheduleAcknowledge`` when the record was already a scheduled callback;
  ``UpdateRecord`` is acknowledged ``UpdateCallCompletionStatsAcknowledge``. A rescheduled
  ``Campaign`` callback returns to the pool at its timestamp; a ``Personal`` one is handed only to
  the agent who booked it.

Control API: ``POST /_emulator/genesys/campaigns`` (load a preview campaign),
``POST /_emulator/genesys/drop-clients`` (expire every CometD client now),
``POST /_emulator/genesys/users/{name}/state`` (a supervisor changes the agent's state on the
platform), ``GET /_emulator/genesys/state``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators.cometd import BayeuxServer
from emulators.core import Outcome, Platform, Request, Response, Router, json_response

# Seconds (real) a Released call stays in GET /api/v2/me/calls.
RELEASED_LINGER_SECONDS = 120.0

HTTP_STATUS = {0: 200, 1: 400, 2: 400, 3: 403, 4: 500, 5: 403, 6: 404, 20: 401}

# Capabilities per call state; the Dialing list is the seed's, verbatim.
CAPABILITIES = {
    "Dialing": [
        "DeleteUserDataPair",
        "AttachUserData",
        "Hangup",
        "DeleteUserData",
        "SendDtmf",
        "UpdateUserData",
    ],
    "Ringing": [
        "DeleteUserDataPair",
        "AttachUserData",
        "Hangup",
        "DeleteUserData",
        "SendDtmf",
        "UpdateUserData",
    ],
    "Established": [
        "DeleteUserDataPair",
        "AttachUserData",
        "Hangup",
        "DeleteUserData",
        "SendDtmf",
        "UpdateUserData",
        "Hold",
        "InitiateTransfer",
        "InitiateConference",
        "SingleStepTransfer",
    ],
    "Released": [],
}

DISPLAY_NAMES = {
    "Ready": "Ready",
    "NotReady": "Not Ready",
    "AfterCallWork": "After Call Work",
    "LoggedOut": "Logged Out",
}

CALL_RESULTS = {"no_answer": "NoAnswer", "busy": "Busy", "fail": "GeneralError"}


class GwsError(Exception):
    """A GWS business failure: answered with its ``statusCode`` and ``statusMessage``."""

    def __init__(self, status_code: int, message: str):
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def gws_error_response(
    status_code: int, message: str, headers: list[tuple[str, str]] | None = None
) -> Response:
    return json_response(
        {"statusCode": status_code, "statusMessage": message},
        HTTP_STATUS.get(status_code, 400),
        headers,
    )


@dataclass
class GwsSession:
    id: str
    user: str
    csrf_token: str


@dataclass
class GwsCall:
    id: str
    conn_id: str
    user: str
    number: str
    state: str = "Dialing"
    user_data: dict[str, Any] = field(default_factory=dict)
    record_handle: int | None = None
    created: float = field(default_factory=time.time)
    established_at: float | None = None
    released_at: float | None = None
    call_result: str = ""


@dataclass
class GwsUser:
    name: str
    user_id: str
    device_id: str
    phone: str
    cc_session: bool = False
    agent_state: str = "LoggedOut"
    reason: str = ""
    preview: dict[str, str] = field(default_factory=dict)  # campaign -> applicationId
    calls: dict[str, GwsCall] = field(default_factory=dict)  # in creation order


@dataclass
class GwsRecord:
    handle: int
    campaign: str
    calling_list: str
    phone: str
    custom: dict[str, Any] = field(default_factory=dict)
    status: str = "pending"  # pending | handed | completed | rejected | rescheduled
    owner: str = ""
    record_type: str = "General"  # General | PersonalCallback | CampaignCallback
    due: float = 0.0
    attempts: int = 0
    call_result: str = ""
    application_id: str = ""
    history: list[str] = field(default_factory=list)


@dataclass
class GwsCampaign:
    name: str
    calling_list: str
    handles: list[int] = field(default_factory=list)  # load order


def _gws_id() -> str:
    """A call id shaped like the seed's ``013V08JRL498H1OI04000VTAES00000G``."""
    alphabet = string.digits + string.ascii_uppercase
    return "".join(secrets.choice(alphabet) for _ in range(32))


class GenesysEmulator(Platform):
    """GWS v2 REST and CometD for the agents ``config.genesys_users``."""

    name = "genesys"
    prefix = "/api/v2"

    def __init__(self, emulator: Any):
        super().__init__(emulator)
        self.bayeux = BayeuxServer(
            timeout_ms=lambda: int(self.config.cometd_timeout_ms),
            interval_ms=lambda: int(self.config.cometd_interval_ms),
            max_interval_ms=lambda: int(self.config.cometd_max_interval_ms),
        )
        self.reset()

    # -- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.generation = getattr(self, "generation", 0) + 1
            self.sessions: dict[str, GwsSession] = {}
            self.users: dict[str, GwsUser] = {}
            self.campaigns: dict[str, GwsCampaign] = {}
            self.records: dict[int, GwsRecord] = {}
            self.handles = itertools.count(431)  # the seed's recordHandle
        self.bayeux.reset()

    def _user(self, name: str) -> GwsUser:
        user = self.users.get(name)
        if user is None:
            index = self.config.genesys_users.index(name) if name in self.config.genesys_users else 0
            # Stable across resets so a cached device id stays valid in a long-running client.
            user = GwsUser(
                name=name,
                user_id=uuid.uuid5(uuid.NAMESPACE_URL, f"gws-user:{name}").hex,
                device_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"gws-device:{name}")),
                phone=str(5001 + index),
            )
            self.users[name] = user
        return user

    # -- routes -----------------------------------------------------------------------------
    def register(self, router: Router) -> None:
        p = self.prefix
        api: list[tuple[str, str, Callable[..., Any]]] = [
            ("GET", rf"{p}/me", self._get_me),
            ("POST", rf"{p}/me", self._post_me),
            ("GET", rf"{p}/me/devices", self._get_devices),
            ("POST", rf"{p}/me/channels/voice", self._post_voice),
            ("POST", rf"{p}/me/outbound-campaigns/(?P<campaign>[^/]+)", self._post_campaign),
            ("POST", rf"{p}/me/devices/(?P<device_id>[^/]+)/calls", self._post_dial),
            ("GET", rf"{p}/me/calls", self._get_calls),
            ("GET", rf"{p}/me/calls/(?P<call_id>[^/]+)", self._get_call),
            ("POST", rf"{p}/me/calls/(?P<call_id>[^/]+)", self._post_call),
            ("POST", rf"{p}/me/outbound-records/(?P<handle>[^/]+)", self._post_record),
        ]
        for method, pattern, handler in api:
            self.route(router, method, pattern, self._endpoint(handler))
        # CometD: the CometD JavaScript client appends the message type to the URL by default
        # (``/handshake``, ``/connect``...), so any suffix is accepted.
        self.route(router, "POST", rf"{p}/notifications(?:/[a-z]*)?", self._endpoint(self._notifications))
        router.add("POST", r"/_emulator/genesys/campaigns", self._control_campaign)
        router.add("POST", r"/_emulator/genesys/drop-clients", self._control_drop)
        router.add("GET", r"/_emulator/genesys/state", self._control_state)
        router.add("POST", r"/_emulator/genesys/users/(?P<name>[^/]+)/state", self._control_user_state)

    def _endpoint(self, handler: Callable[..., Any]) -> Callable[..., Response]:
        """Wrap a handler with Basic auth, the cookie session and CSRF; turn :class:`GwsError`
        into the GWS envelope. Handlers return a dict (``statusCode`` 0 is added) or a Response."""

        def run(req: Request, **params: str) -> Response:
            user = self._basic_user(req)
            if user is None:
                return gws_error_response(
                    20, "User is not authenticated", [("WWW-Authenticate", 'Basic realm="GWS"')]
                )
            headers: list[tuple[str, str]] = []
            with self.lock:
                session = self.sessions.get(req.cookies.get("JSESSIONID", ""))
                fresh = session is None or session.user != user
                if fresh:
                    session = GwsSession(
                        id=secrets.token_hex(16).upper(), user=user, csrf_token=str(uuid.uuid4())
                    )
                    self.sessions[session.id] = session
                    headers.append(("Set-Cookie", f"JSESSIONID={session.id}; Path=/; HttpOnly"))
            assert session is not None
            if self.config.genesys_csrf:
                if req.method == "GET":
                    headers += [("X-CSRF-HEADER", "X-CSRF-TOKEN"), ("X-CSRF-TOKEN", session.csrf_token)]
                elif fresh or req.header("X-CSRF-TOKEN") != session.csrf_token:
                    return gws_error_response(3, "Missing or invalid CSRF token", headers)
            try:
                result = handler(req, session, **params)
            except GwsError as exc:
                return gws_error_response(exc.status_code, exc.message, headers)
            if isinstance(result, Response):
                result.headers.extend(headers)
                return result
            return json_response({"statusCode": 0, **result}, 200, headers)

        return run

    def _basic_user(self, req: Request) -> str | None:
        scheme, _, encoded = req.header("Authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        if not sep or user not in self.config.genesys_users:
            return None
        if not secrets.compare_digest(password, self.config.genesys_password):
            return None
        return user

    @staticmethod
    def _body(req: Request) -> dict[str, Any]:
        try:
            body = req.json({})
        except Exception as exc:  # BadRequest: answer in the GWS envelope, not the core's
            raise GwsError(1, f"Malformed JSON body: {exc}") from exc
        if not isinstance(body, dict):
            raise GwsError(1, "The body must be a JSON object")
        return body

    @staticmethod
    def _base(req: Request) -> str:
        return f"http://{req.header('Host', '127.0.0.1')}"

    def _publish(self, user: str, channel: str, data: dict[str, Any]) -> None:
        self.bayeux.publish(user, channel, data)

    # -- me, devices, agent state ----------------------------------------------------------
    def _device_json(self, user: GwsUser, base: str) -> dict[str, Any]:
        state = user.agent_state
        user_state: dict[str, Any] = {
            "id": f"{state}-{user.name}",
            "state": state,
            "displayName": DISPLAY_NAMES.get(state, state),
        }
        if user.reason:
            user_state["reason"] = user.reason
        return {
            "id": user.device_id,
            "deviceState": "Active",
            "userState": user_state,
            "phoneNumber": user.phone,
            "e164Number": user.phone,
            "telephonyNetwork": "Private",
            "doNotDisturb": "Off",
            "voiceEnvironmentUri": f"{base}/api/v2/voice-environments/emulated",
            "capabilities": ["Dial", "ForwardCallsOn", "DoNotDisturbOn"],
            "uri": f"{base}/api/v2/devices/{user.device_id}",
            "path": f"/devices/{user.device_id}",
        }

    def _channels_json(self, user: GwsUser) -> list[dict[str, Any]]:
        if not user.cc_session:
            return []
        return [
            {
                "name": "voice",
                "userState": {"state": user.agent_state, "displayName": DISPLAY_NAMES.get(user.agent_state)},
            }
        ]

    def _get_me(self, req: Request, session: GwsSession) -> dict[str, Any]:
        with self.lock:
            user = self._user(session.user)
            base = self._base(req)
            me: dict[str, Any] = {
                "id": user.user_id,
                "userName": user.name,
                "firstName": user.name.capitalize(),
                "lastName": "Emulated",
                "employeeId": user.name,
                "agentLogin": user.phone,
                "roles": ["ROLE_AGENT"],
                "enabledFeatures": ["api-voice", "api-voice-outbound"],
                "uri": f"{base}/api/v2/me",
                "path": "/me",
            }
            subresources = req.arg("subresources", "") or ""
            if subresources == "*" or "devices" in subresources:
                me["devices"] = [self._device_json(user, base)]
            if subresources == "*" or "channels" in subresources:
                me["channels"] = self._channels_json(user)
        return {"user": me}

    def _get_devices(self, req: Request, session: GwsSession) -> dict[str, Any]:
        with self.lock:
            return {"devices": [self._device_json(self._user(session.user), self._base(req))]}

    def _post_me(self, req: Request, session: GwsSession) -> dict[str, Any]:
        body = self._body(req)
        operation = body.get("operationName")
        with self.lock:
            user = self._user(session.user)
            if operation == "StartContactCenterSession":
                channels = body.get("channels")
                if not isinstance(channels, list) or "voice" not in channels:
                    raise GwsError(1, "channels must list 'voice'")
                if not user.cc_session:
                    user.cc_session = True
                    self._set_agent_state(user, "NotReady", "", self._base(req))
                return {}
            if operation == "EndContactCenterSession":
                if any(c.state != "Released" for c in user.calls.values()):
                    raise GwsError(2, "Cannot end the session during a call")
                user.cc_session = False
                user.preview.clear()
                self._set_agent_state(user, "LoggedOut", "", self._base(req))
                return {}
        raise GwsError(1, "operationName must be StartContactCenterSession or EndContactCenterSession")

    def _post_voice(self, req: Request, session: GwsSession) -> dict[str, Any]:
        body = self._body(req)
        operation = body.get("operationName")
        if operation not in ("Ready", "NotReady", "AfterCallWork"):
            raise GwsError(1, "operationName must be Ready, NotReady or AfterCallWork")
        with self.lock:
            user = self._user(session.user)
            if not user.cc_session:
                raise GwsError(2, "No contact center session: StartContactCenterSession first")
            reason = (
                str(body.get("reasonCode") or body.get("reason") or "") if operation == "NotReady" else ""
            )
            self._set_agent_state(user, operation, reason, self._base(req))
        return {}

    def _set_agent_state(self, user: GwsUser, state: str, reason: str, base: str) -> None:
        user.agent_state, user.reason = state, reason
        self._publish(
            user.name,
            "/v2/me/devices",
            {
                "messageType": "DeviceStateChangeMessage",
                "devices": [self._device_json(user, base)],
            },
        )

    # -- outbound campaigns and records -----------------------------------------------------
    def _post_campaign(self, req: Request, session: GwsSession, campaign: str) -> dict[str, Any]:
        body = self._body(req)
        operation = body.get("operationName")
        with self.lock:
            user = self._user(session.user)
            found = self.campaigns.get(campaign)
            if operation == "StartPreviewSession":
                if not body.get("devicePath"):
                    raise GwsError(1, "devicePath is required")
                if found is None:
                    raise GwsError(6, f"Campaign {campaign} not found")
                if not user.cc_session:
                    raise GwsError(2, "No contact center session: StartContactCenterSession first")
                self._check_device_path(user, body["devicePath"])
                application_id = str(body.get("applicationId") or "")
                user.preview[campaign] = application_id
                self._publish(
                    user.name,
                    "/v2/me/outbound",
                    {
                        "messageType": "OutboundCampaignMessage",
                        "notificationType": "PreviewSessionStarted",
                        "campaignName": campaign,
                        "applicationId": application_id,
                        "outboundCampaign": {
                            "name": campaign,
                            "callingList": found.calling_list,
                            "mode": "Preview",
                        },
                    },
                )
                return {}
            if operation == "StopPreviewSession":
                if user.preview.pop(campaign, None) is None:
                    raise GwsError(2, "No preview session for this campaign")
                self._publish(
                    user.name,
                    "/v2/me/outbound",
                    {
                        "messageType": "OutboundCampaignMessage",
                        "notificationType": "PreviewSessionStopped",
                        "campaignName": campaign,
                    },
                )
                return {}
            if operation == "GetPreviewRecord":
                if found is None:
                    raise GwsError(6, f"Campaign {campaign} not found")
                if campaign not in user.preview:
                    raise GwsError(2, "No preview session for this campaign: StartPreviewSession first")
                record = self._next_record(found, user.name)
                if record is None:
                    self._publish(
                        user.name,
                        "/v2/me/outbound",
                        {
                            "messageType": "OutboundRecordMessage",
                            "notificationType": "NoRecords",
                            "campaignName": campaign,
                            "statusMessage": "No Records Available",
                        },
                    )
                    return {}
                record.status, record.owner = "handed", user.name
                record.application_id = user.preview[campaign]
                record.history.append("handed")
                self._publish(
                    user.name,
                    "/v2/me/outbound",
                    {
                        "messageType": "OutboundRecordMessage",
                        "notificationType": "PreviewRecord",
                        "campaignName": campaign,
                        "record": self._record_json(record),
                    },
                )
                return {}
        raise GwsError(1, "operationName must be StartPreviewSession, StopPreviewSession or GetPreviewRecord")

    def _next_record(self, campaign: GwsCampaign, user: str) -> GwsRecord | None:
        now = time.time()
        candidates = [self.records[h] for h in campaign.handles]
        # Due callbacks first (a Personal one only for the agent who booked it), then fresh ones.
        for record in candidates:
            due = record.status == "rescheduled" and record.due <= now
            if due and (record.record_type == "CampaignCallback" or record.owner == user):
                return record
        for record in candidates:
            if record.status == "pending":
                return record
        return None

    def _record_json(self, record: GwsRecord) -> dict[str, Any]:
        user_data = {
            "GSW_RECORD_HANDLE": record.handle,
            "GSW_PHONE": record.phone,
            "GSW_CAMPAIGN_NAME": record.campaign,
            "GSW_CALLING_LIST": record.calling_list,
            "GSW_APPLICATION_ID": record.application_id,
            "GSW_CHAIN_ID": record.handle,
            "GSW_ATTEMPTS": record.attempts,
            "GSW_RECORD_TYPE": record.record_type,
            **record.custom,
        }
        return {
            "recordHandle": record.handle,
            "phoneNumber": record.phone,
            "callingList": record.calling_list,
            "campaignName": record.campaign,
            "recordType": record.record_type,
            "chainId": record.handle,
            "attempts": record.attempts,
            "userData": user_data,
        }

    def _post_record(self, req: Request, session: GwsSession, handle: str) -> dict[str, Any]:
        body = self._body(req)
        operation = body.get("operationName")
        ops = ("CompleteRecord", "RejectRecord", "RescheduleRecord", "UpdateRecord")
        if operation not in ops:
            raise GwsError(1, f"operationName must be one of {', '.join(ops)}")
        for name in ("campaignName", "callingList"):
            if not body.get(name):
                raise GwsError(1, f"{name} is required")
        with self.lock:
            user = self._user(session.user)
            record = self.records.get(int(handle)) if handle.isdigit() else None
            if record is None or record.owner != user.name or record.campaign != body["campaignName"]:
                raise GwsError(6, f"Record {handle} not found")
            if record.status != "handed":
                raise GwsError(2, f"Record {handle} is not held by this agent (status {record.status})")
            ack = self._apply_record_op(record, operation, body)
            self._publish(
                user.name,
                "/v2/me/outbound",
                {
                    "messageType": "OutboundRecordMessage",
                    "notificationType": ack,
                    "campaignName": record.campaign,
                    "recordHandle": record.handle,
                    "record": self._record_json(record),
                },
            )
        return {}

    def _apply_record_op(self, record: GwsRecord, operation: str, body: dict[str, Any]) -> str:
        """Change the record; return the acknowledgement's notificationType."""
        if operation == "CompleteRecord":
            record.status, record.call_result = "completed", str(body.get("callResult") or "")
            record.history.append(f"completed:{record.call_result}")
            return "RecordProcessedAcknowledge"
        if operation == "RejectRecord":
            # Back to the pool for anyone (telephony.md: "skip: back to the pool").
            record.status, record.owner = "pending", ""
            record.history.append("rejected")
            return "RecordRejectAcknowledge"
        if operation == "RescheduleRecord":
            callback_type = body.get("callbackType")
            if callback_type not in ("Personal", "Campaign"):
                raise GwsError(1, "callbackType must be Personal or Campaign")
            try:
                timestamp = float(body["timestamp"])
            except (KeyError, TypeError, ValueError):
                raise GwsError(1, "timestamp (epoch seconds) is required") from None
            was_scheduled = record.record_type != "General"
            record.record_type = f"{callback_type}Callback"
            record.status, record.due = "rescheduled", timestamp
            record.attempts += 1
            if callback_type == "Campaign":
                record.owner = ""
            record.history.append(f"rescheduled:{callback_type}:{int(timestamp)}")
            return "ScheduledRecordRescheduleAcknowledge" if was_scheduled else "RecordRescheduleAcknowledge"
        # UpdateRecord: new custom field values, the record stays with the agent.
        fields = body.get("userData") or body.get("customFields") or {}
        if isinstance(fields, dict):
            record.custom.update({k: v for k, v in fields.items() if not str(k).startswith("GSW_")})
        if body.get("callResult"):
            record.call_result = str(body["callResult"])
        record.history.append("updated")
        return "UpdateCallCompletionStatsAcknowledge"

    # -- calls ------------------------------------------------------------------------------
    def _check_device_path(self, user: GwsUser, device_path: Any) -> None:
        if str(device_path).rstrip("/") != f"/devices/{user.device_id}":
            raise GwsError(6, f"Device {device_path} not found")

    def _call_json(self, call: GwsCall, user: GwsUser, base: str) -> dict[str, Any]:
        duration = 0
        if call.established_at is not None:
            duration = int((call.released_at or time.time()) - call.established_at)
        digits = "".join(ch for ch in call.number if ch.isdigit())
        return {
            "id": call.id,
            "state": call.state,
            "callUuid": call.id,
            "connId": call.conn_id,
            "deviceUri": f"{base}/api/v2/devices/{user.device_id}",
            "participants": [
                {
                    "e164Number": call.number if call.number.startswith("+") else "",
                    "formattedPhoneNumber": call.number,
                    "phoneNumber": call.number,
                    "digits": digits,
                }
            ],
            "dnis": call.number,
            # The seed dials an internal DN (5001) and says "Internal"; longer numbers go out.
            "callType": "Internal" if len(digits) <= 5 else "Outbound",
            "capabilities": list(CAPABILITIES.get(call.state, [])),
            "duration": str(duration),
            "mute": "Off",
            "supervisorListeningIn": False,
            "monitoredUserMuted": False,
            "userData": dict(call.user_data),
            "uri": f"{base}/api/v2/me/calls/{call.id}",
            "path": f"/calls/{call.id}",
        }

    def _call_message(self, call: GwsCall, user: GwsUser, base: str) -> dict[str, Any]:
        extensions: dict[str, Any] = {"WrapUpTime": 0, "BusinessCall": 0}
        if call.state == "Released":
            extensions["CallResult"] = call.call_result
        return {
            "notificationType": "StatusChange",
            "call": self._call_json(call, user, base),
            # As in the seed: the top-level phoneNumber is the agent's own DN, not the customer's.
            "phoneNumber": user.phone,
            "extensions": extensions,
            "messageType": "CallStateChangeMessage",
        }

    def _post_dial(self, req: Request, session: GwsSession, device_id: str) -> Response | dict[str, Any]:
        body = self._body(req)
        if body.get("operationName") != "Dial":
            raise GwsError(1, "operationName must be Dial")
        record = body.get("outboundRecord")
        destination = body.get("destination")
        number = ""
        if isinstance(record, dict):
            number = str(record.get("phoneNumber") or "")
        elif isinstance(destination, dict):
            number = str(destination.get("phoneNumber") or "")
        if not number:
            raise GwsError(1, "outboundRecord.phoneNumber or destination.phoneNumber is required")
        with self.lock:
            user = self._user(session.user)
            if device_id != user.device_id:
                raise GwsError(6, f"Device {device_id} not found")
            if body.get("devicePath"):
                self._check_device_path(user, body["devicePath"])
            if not user.cc_session:
                raise GwsError(2, "No contact center session: StartContactCenterSession first")
            if any(c.state != "Released" for c in user.calls.values()):
                raise GwsError(2, "The device already has a call")
            outcome = self.emulator.outcomes.take("genesys", number)
            if outcome.result == "error":
                raise GwsError(4, "Internal error: T-Server rejected the dial request")
            call = GwsCall(id=_gws_id(), conn_id=secrets.token_hex(8), user=user.name, number=number)
            if isinstance(record, dict):
                call.user_data = self._dial_user_data(record)
                handle = record.get("recordHandle")
                call.record_handle = int(handle) if str(handle).isdigit() else None
                known = self.records.get(call.record_handle or -1)
                if known is not None:
                    known.attempts += 1
            self._prune_calls(user)
            user.calls[call.id] = call
            base = self._base(req)
            self._publish(user.name, "/v2/me/calls", self._call_message(call, user, base))
            threading.Thread(
                target=self._progress, args=(self.generation, user.name, call.id, outcome, base), daemon=True
            ).start()
        return {}

    @staticmethod
    def _dial_user_data(record: dict[str, Any]) -> dict[str, Any]:
        """The record's user data attached to the call (seed: "the client sets the user data
        received as part of previewRecord"), plus the GSW keys that identify the record."""
        data = dict(record.get("userData") or {})
        other = record.get("otherFields")
        if isinstance(other, dict):
            data.update(other)
        for key, gsw in (
            ("recordHandle", "GSW_RECORD_HANDLE"),
            ("campaignName", "GSW_CAMPAIGN_NAME"),
            ("callingList", "GSW_CALLING_LIST"),
            ("phoneNumber", "GSW_PHONE"),
        ):
            if key in record:
                data.setdefault(gsw, record[key])
        return data

    def _progress(self, generation: int, user_name: str, call_id: str, outcome: Outcome, base: str) -> None:
        """Play the scripted outcome on a call, in platform time."""
        steps: list[tuple[float, str, str]] = []
        if outcome.result in ("answer", "no_answer"):
            steps.append((outcome.agent_ring_seconds, "Ringing", ""))
            if outcome.result == "answer":
                steps.append((outcome.ring_seconds, "Established", ""))
                if outcome.talk_seconds is not None:
                    steps.append((outcome.talk_seconds, "Released", "Answer"))
            else:
                steps.append((outcome.ring_seconds, "Released", CALL_RESULTS["no_answer"]))
        else:  # busy, fail
            steps.append((outcome.agent_ring_seconds, "Released", CALL_RESULTS[outcome.result]))
        for delay, state, result in steps:
            self.clock.sleep(float(delay))
            with self.lock:
                if generation != self.generation:
                    return
                user = self.users.get(user_name)
                call = user.calls.get(call_id) if user else None
                if user is None or call is None or call.state == "Released":
                    return
                self._set_call_state(user, call, state, result, base)

    def _set_call_state(self, user: GwsUser, call: GwsCall, state: str, result: str, base: str) -> None:
        call.state = state
        if state == "Established":
            call.established_at = time.time()
        if state == "Released":
            call.released_at, call.call_result = time.time(), result
        self._publish(user.name, "/v2/me/calls", self._call_message(call, user, base))

    def _prune_calls(self, user: GwsUser) -> None:
        now = time.time()
        for call_id, call in list(user.calls.items()):
            if call.released_at is not None and now - call.released_at > RELEASED_LINGER_SECONDS:
                del user.calls[call_id]

    def _get_calls(self, req: Request, session: GwsSession) -> dict[str, Any]:
        with self.lock:
            user = self._user(session.user)
            self._prune_calls(user)
            base = self._base(req)
            return {"calls": [self._call_json(c, user, base) for c in user.calls.values()]}

    def _get_call(self, req: Request, session: GwsSession, call_id: str) -> dict[str, Any]:
        with self.lock:
            user = self._user(session.user)
            call = user.calls.get(call_id)
            if call is None:
                raise GwsError(6, f"Call {call_id} not found")
            return {"call": self._call_json(call, user, self._base(req))}

    def _post_call(self, req: Request, session: GwsSession, call_id: str) -> dict[str, Any]:
        body = self._body(req)
        if body.get("operationName") != "Hangup":
            raise GwsError(1, "operationName must be Hangup")
        with self.lock:
            user = self._user(session.user)
            call = user.calls.get(call_id)
            if call is None:
                raise GwsError(6, f"Call {call_id} not found")
            if call.state == "Released":
                raise GwsError(2, f"Call {call_id} is already released")
            result = "Answer" if call.established_at is not None else "Abandoned"
            self._set_call_state(user, call, "Released", result, self._base(req))
        return {}

    # -- CometD -----------------------------------------------------------------------------
    def _notifications(self, req: Request, session: GwsSession) -> Response:
        try:
            messages = req.json(None)
        except Exception:
            messages = None
        if isinstance(messages, dict):
            messages = [messages]
        if not isinstance(messages, list) or not messages:
            return json_response(
                [{"successful": False, "error": "400::Body must be a JSON array of messages"}], 400
            )
        # May block for a long poll: no platform lock is held here.
        return json_response(self.bayeux.handle(messages, session.user))

    # -- control ----------------------------------------------------------------------------
    def _control_campaign(self, req: Request) -> Response:
        data = req.json({}) or {}
        name = str(data.get("name") or "")
        if not name:
            return json_response({"error": "name is required"}, 400)
        rows = data.get("records") or []
        if not isinstance(rows, list) or any(
            not isinstance(r, dict) or not r.get("phoneNumber") for r in rows
        ):
            return json_response({"error": "records must be objects with a phoneNumber"}, 400)
        with self.lock:
            campaign = self.campaigns.get(name)
            calling_list = str(
                data.get("callingList") or (campaign.calling_list if campaign else f"{name}_list")
            )
            if campaign is None:
                campaign = self.campaigns[name] = GwsCampaign(name=name, calling_list=calling_list)
            campaign.calling_list = calling_list
            handles = []
            for row in rows:
                custom = dict(row.get("userData") or {})
                custom.update({k: v for k, v in row.items() if k not in ("phoneNumber", "userData")})
                record = GwsRecord(
                    handle=next(self.handles),
                    campaign=name,
                    calling_list=calling_list,
                    phone=str(row["phoneNumber"]),
                    custom=custom,
                )
                self.records[record.handle] = record
                campaign.handles.append(record.handle)
                handles.append(record.handle)
        return json_response({"name": name, "callingList": calling_list, "recordHandles": handles})

    def _control_user_state(self, req: Request, name: str) -> Response:
        """A change made on the platform, not through this agent's session: a supervisor setting
        the agent's state, or the agent's phone. ``{"state": "Ready"|"NotReady"|"AfterCallWork",
        "reason"?: str, "notify"?: bool}``. Published as a ``DeviceStateChangeMessage`` like any
        state change (also during a call); ``"notify": false`` changes it silently, as when the
        message is lost in transit, so a test can prove a client re-reads after a re-handshake."""
        data = req.json({}) or {}
        state = data.get("state") if isinstance(data, dict) else None
        if state not in ("Ready", "NotReady", "AfterCallWork"):
            return json_response({"error": "state must be Ready, NotReady or AfterCallWork"}, 400)
        if name not in self.config.genesys_users:
            return json_response({"error": f"no user {name}"}, 404)
        with self.lock:
            user = self._user(name)
            if not user.cc_session:
                return json_response({"error": "no contact center session"}, 409)
            reason = str(data.get("reason") or "") if state == "NotReady" else ""
            if data.get("notify", True):
                self._set_agent_state(user, state, reason, self._base(req))
            else:
                user.agent_state, user.reason = state, reason
            return json_response({"agentState": user.agent_state, "reason": user.reason})

    def _control_drop(self, req: Request) -> Response:
        return json_response({"dropped": self.bayeux.drop_clients()})

    def _control_state(self, req: Request) -> Response:
        with self.lock:
            users = {
                name: {
                    "deviceId": u.device_id,
                    "phoneNumber": u.phone,
                    "contactCenterSession": u.cc_session,
                    "agentState": u.agent_state,
                    "reason": u.reason,
                    "previewSessions": dict(u.preview),
                    "calls": [
                        {"id": c.id, "state": c.state, "number": c.number, "callResult": c.call_result}
                        for c in u.calls.values()
                    ],
                }
                for name, u in self.users.items()
            }
            records = {
                str(h): {
                    "campaignName": r.campaign,
                    "phoneNumber": r.phone,
                    "status": r.status,
                    "owner": r.owner,
                    "recordType": r.record_type,
                    "due": r.due,
                    "callResult": r.call_result,
                    "history": list(r.history),
                }
                for h, r in self.records.items()
            }
            sessions = [{"user": s.user} for s in self.sessions.values()]
            campaigns = {
                n: {"callingList": c.calling_list, "records": list(c.handles)}
                for n, c in self.campaigns.items()
            }
        return json_response(
            {
                "users": users,
                "records": records,
                "campaigns": campaigns,
                "sessions": sessions,
                "cometd": self.bayeux.state(),
            }
        )

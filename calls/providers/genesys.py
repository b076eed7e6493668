"""Genesys Workspace Web Services (GWS) API v2 adapter. See ``docs/providers-genesys.md``.

Session (``shared/telephony.md``, GWS "Session"): HTTP Basic auth as the agent (``agent.ref`` and
``agent.password`` or the account's ``credentials["agent_password"]``), the ``JSESSIONID`` cookie
kept in ``state["cookies"]``, and the CSRF token read from the ``X-CSRF-TOKEN`` header of GET
answers (``state["csrf_token"]``; ``X-CSRF-HEADER`` names the header to send it back in), sent on
every write. A 403 on a write fetches a fresh token (``GET /api/v2/me``) and retries once.

Errors: every GWS answer carries ``statusCode`` ("Return Values" in the GWS API docs); see
:func:`gws_error`. HTTP 200 only means "accepted": outcomes arrive over CometD, which
:meth:`GenesysProvider.open_notifications` opens as a :class:`calls.bayeux.BayeuxClient` on the
same session, and :meth:`GenesysProvider.parse` turns into signals.

Dial: the call id is not in the Dial answer (seed 004: ``{"statusCode": 0}``). The adapter reads
``GET /api/v2/me/calls`` right after the Dial and returns the id of the call that matches the
record handle (else the number). When the platform has not listed it yet, ``call_id`` is ``""``
and the engine learns the id from the first ``CallStateChangeMessage`` whose signal carries the
same ``record_handle`` or ``number``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import requests

from calls.bayeux import BayeuxClient
from calls.providers.base import (
    CONNECTED,
    CUSTOMER_RINGING,
    DIALING,
    ENDED,
    FAILED,
    NAME_KEYS,
    PUSH,
    REASON_BUSY,
    REASON_NO_ANSWER,
    REASON_PLATFORM,
    AccountConfig,
    AgentLogin,
    DialRequest,
    DialResult,
    Identity,
    Offer,
    Provider,
    ProviderError,
    Signal,
)

log = logging.getLogger("calls.providers.genesys")

API = "/api/v2"
DEFAULT_CHANNELS = ("/v2/me/*",)
CALLS_CHANNEL = "/v2/me/calls"
DEVICES_CHANNEL = "/v2/me/devices"
# userData keys the platform keeps for its own bookkeeping (GSW_RECORD_HANDLE, GSW_CAMPAIGN_NAME
# ...): not customer data, except the customer's name when the calling list has one.
BOOKKEEPING_PREFIX = "GSW_"
CUSTOMER_NAME_KEY = "GSW_CUSTOMER_NAME"

# statusCode -> (plain words for an agent, permanent). GWS API "Return Values".
STATUS_CODES: dict[int, tuple[str, bool]] = {
    1: ("Genesys says a required parameter is missing.", True),
    2: ("Genesys says this is not possible in the current state.", True),
    3: ("Genesys refused the operation (forbidden).", True),
    4: ("Genesys had an internal error; try again.", False),
    5: ("The agent has no permission for this operation on Genesys.", True),
    6: ("Genesys does not know this resource (call, record, device or campaign).", True),
    20: ("Genesys did not accept the agent's credentials; sign in again.", True),
}

# Our call states by GWS call.state. In GWS the agent's own device places the call, so there is no
# separate agent leg to ring: "Dialing" is our leg dialing out, "Ringing" the customer's phone.
CALL_STATES = {"Dialing": DIALING, "Ringing": CUSTOMER_RINGING, "Established": CONNECTED}

# Why a call was released: the emulator's ``extensions.CallResult`` (OCS call-result names).
RELEASE_REASONS = {"Busy": REASON_BUSY, "NoAnswer": REASON_NO_ANSWER, "GeneralError": REASON_PLATFORM}
ENDED_RESULTS = {"", "Answer", "Abandoned"}

# Agent presence (agentdesk.models.Presence) by GWS userState.state.
AGENT_STATES = {"Ready": "ready", "NotReady": "not_ready", "AfterCallWork": "wrap_up", "LoggedOut": "offline"}

# Our disposition names that have an OCS callResult; others complete the record without one
# (callResult is optional). Accounts can extend this with options["call_results"].
DEFAULT_CALL_RESULTS = {
    "busy": "Busy",
    "no_answer": "NoAnswer",
    "answering_machine": "AnsweringMachine",
    "wrong_number": "WrongParty",
    "fax": "Fax",
}


def gws_error(http_status: int, body: Any) -> ProviderError | None:
    """The :class:`ProviderError` for one GWS answer, or ``None`` when it is a success.

    ``statusCode`` decides when present (its code becomes ``ProviderError.code``); without one,
    HTTP 401 is code ``"20"``, HTTP 403 is ``"403"`` (a CSRF refusal from the web tier), HTTP 5xx
    is retryable. Code ``"20"`` means the caller must sign in again.
    """
    code = body.get("statusCode") if isinstance(body, dict) else None
    detail = str(body.get("statusMessage") or "") if isinstance(body, dict) else ""
    if code is None:
        if http_status == 401:
            code = 20
        elif http_status == 403:
            return ProviderError(
                "Genesys refused the request's CSRF token.", code="403", platform="genesys", http_status=403
            )
        elif http_status >= 500:
            return ProviderError(
                f"Genesys failed (HTTP {http_status}); try again.",
                code=str(http_status),
                permanent=False,
                platform="genesys",
                http_status=http_status,
            )
        elif http_status >= 400:
            return ProviderError(
                f"Genesys refused the request (HTTP {http_status}).",
                code=str(http_status),
                platform="genesys",
                http_status=http_status,
            )
        else:
            return None
    try:
        number = int(code)
    except (TypeError, ValueError):
        number = -1
    if number == 0:
        return None
    words, permanent = STATUS_CODES.get(number, (f"Genesys refused the request (statusCode {code}).", True))
    message = f"{words} ({detail})" if detail else words
    return ProviderError(
        message, code=str(code), permanent=permanent, platform="genesys", http_status=http_status
    )


def _digits(number: Any) -> str:
    return re.sub(r"\D", "", str(number or ""))


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class GenesysProvider(Provider):
    """GWS v2 for one agent session; ``state`` holds ``cookies``, ``csrf_token``, ``csrf_header``,
    ``device_id`` and ``preview_sessions`` (campaign names with a started preview session).

    Account options: ``application_id`` (sent as ``applicationId``), ``call_results`` (our
    disposition -> OCS callResult), ``callback_type`` (``Personal`` default for a booked
    callback), ``retry_seconds`` (when a non-final disposition has no callback time; 3600).
    """

    platform = "genesys"
    label = "Genesys GWS"
    base_url_hint = "…/api/v2"
    campaign_ref_hint = "campaign name"
    agent_sessions = True
    offers_leads = True
    can_look_up_calls = True
    hang_up_needs_call_id = True
    event_stream = PUSH
    identity_fields: ClassVar[Mapping[str, str]] = {"ref": "Genesys username"}

    @classmethod
    def agent_login(cls, identity: Identity, credentials: Mapping[str, Any]) -> AgentLogin:
        """GWS knows the agent by the Basic-auth username, with the account's agent password."""
        return AgentLogin(
            ref=identity.ref,
            password=str(credentials.get("agent_password", "")),
            username=identity.ref,
        )

    @classmethod
    def parse_offer(cls, data: Mapping[str, Any]) -> Offer:
        """A preview record's offer (as :meth:`_record_signal` keeps it): its ``phoneNumber``, its
        ``userData`` without the platform's ``GSW_*`` bookkeeping (``GSW_CUSTOMER_NAME`` aside,
        read as the name), and the campaign's name."""
        record = data.get("record") if isinstance(data.get("record"), Mapping) else {}
        user_data = record.get("userData") if isinstance(record.get("userData"), Mapping) else {}
        fields = {k: v for k, v in user_data.items() if not str(k).startswith(BOOKKEEPING_PREFIX)}
        fields.update({k: v for k, v in user_data.items() if k == CUSTOMER_NAME_KEY})
        return Offer.from_fields(
            fields,
            raw_number=str(data.get("phoneNumber") or record.get("phoneNumber") or ""),
            name=str(data.get("name") or record.get("name") or ""),
            campaign_ref=str(data.get("campaignName") or record.get("campaignName") or ""),
            name_keys=(*NAME_KEYS, CUSTOMER_NAME_KEY),
        )

    @classmethod
    def offer_record(cls, data: Mapping[str, Any]) -> str:
        """The record's calling list and ``recordHandle``: GWS hands a record out under the same
        handle each time (a RescheduleRecord or RejectRecord puts that record back in the pool)."""
        handle = data.get("recordHandle")
        return "" if handle is None else f"{data.get('callingList', '')}:{handle}"

    def __init__(self, account: AccountConfig, state: Any = None):
        super().__init__(account, state)
        # telephony.md gives the base URL as http(s)://<host>/api/v2; paths here carry /api/v2
        # themselves, so accept the account's base URL with or without it.
        if self.http.base_url.endswith(API):
            self.http.base_url = self.http.base_url[: -len(API)]
        for name, value in dict(self.state.get("cookies") or {}).items():
            self.http.session.cookies.set(name, value)
        # Every answer, REST or CometD, may renew the cookie or the CSRF token.
        self.http.session.hooks["response"].append(self._remember)

    # -- session ----------------------------------------------------------------------------
    def _authenticate(self, agent: AgentLogin) -> None:
        password = agent.password or self.account.credentials.get("agent_password", "")
        if not agent.ref or not password:
            raise self.error("No Genesys username or password is configured for this agent.", code="20")
        self.http.session.auth = (agent.ref, password)

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if "JSESSIONID" in response.cookies and "X-CSRF-TOKEN" not in response.headers:
            # A new server session: the old session's CSRF token is no longer valid.
            self.state.pop("csrf_token", None)
        self.state["cookies"] = self.http.session.cookies.get_dict()
        token = response.headers.get("X-CSRF-TOKEN")
        if token:
            self.state["csrf_token"] = token
            self.state["csrf_header"] = response.headers.get("X-CSRF-HEADER") or "X-CSRF-TOKEN"

    def _csrf_headers(self) -> dict[str, str]:
        token = self.state.get("csrf_token")
        return {str(self.state.get("csrf_header") or "X-CSRF-TOKEN"): str(token)} if token else {}

    def _refresh_csrf(self, agent: AgentLogin) -> None:
        self._request("GET", f"{API}/me", agent)

    def _request(
        self,
        method: str,
        path: str,
        agent: AgentLogin,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        retry_csrf: bool = True,
    ) -> dict[str, Any]:
        """One GWS call through the adapter's HTTP chokepoint; returns the JSON body or raises."""
        self._authenticate(agent)
        headers = self._csrf_headers() if method != "GET" else {}
        response = self.http.request(method, path, json=body, params=params, headers=headers)
        if response.status_code == 403 and method != "GET" and retry_csrf:
            # Missing or stale CSRF token: a GET hands out the session's token; retry once.
            log.info("genesys: %s %s refused (403); fetching a CSRF token and retrying once", method, path)
            self._refresh_csrf(agent)
            return self._request(method, path, agent, body=body, params=params, retry_csrf=False)
        try:
            data = response.json()
        except ValueError:
            data = None
        error = gws_error(response.status_code, data)
        if error is not None:
            if error.code == "20":
                # The server session is gone: start a new one on the next request.
                self.http.session.cookies.clear()
                for key in ("cookies", "csrf_token"):
                    self.state.pop(key, None)
            raise error
        if not isinstance(data, dict):
            raise self.error(
                f"Genesys sent an unreadable answer (HTTP {response.status_code}).",
                code=str(response.status_code),
                http_status=response.status_code,
            )
        return data

    def list_devices(self, agent: AgentLogin) -> list[dict[str, Any]]:
        """The agent's devices (``GET /api/v2/me/devices``), each with its ``userState``: what a
        client re-reads after a CometD re-handshake, because state changes in the gap are lost."""
        devices = self._request("GET", f"{API}/me/devices", agent).get("devices") or []
        return [d for d in devices if isinstance(d, dict)]

    def _device_id(self, agent: AgentLogin) -> str:
        if not self.state.get("device_id"):
            devices = self.list_devices(agent)
            if not devices or not devices[0].get("id"):
                raise self.error("Genesys lists no device for this agent.", code="6")
            self.state["device_id"] = str(devices[0]["id"])
        return str(self.state["device_id"])

    def _device_path(self, agent: AgentLogin) -> str:
        return f"/devices/{self._device_id(agent)}"

    # -- agent session ----------------------------------------------------------------------
    def sign_in(self, agent: AgentLogin) -> None:
        """Find the agent's device (also fetches the CSRF token) and start the contact-center
        session on the voice channel."""
        self.state.pop("device_id", None)
        self._device_id(agent)
        self._request(
            "POST",
            f"{API}/me",
            agent,
            body={"operationName": "StartContactCenterSession", "channels": ["voice"]},
        )
        self.state["preview_sessions"] = []

    def sign_out(self, agent: AgentLogin) -> None:
        self._request("POST", f"{API}/me", agent, body={"operationName": "EndContactCenterSession"})
        self.state["preview_sessions"] = []

    def signed_in_state(self) -> str:
        # A new contact-center session starts NotReady (the emulator's choice, as GWS agents do).
        return "not_ready"

    def _voice(self, agent: AgentLogin, operation: str, extra: Mapping[str, Any] | None = None) -> None:
        self._request(
            "POST", f"{API}/me/channels/voice", agent, body={"operationName": operation, **(extra or {})}
        )

    def set_ready(self, agent: AgentLogin) -> None:
        self._voice(agent, "Ready")

    def set_not_ready(self, agent: AgentLogin, reason: str = "") -> None:
        # The GWS parameter for a not-ready reason is not documented here (telephony.md,
        # "Unknown"); ``reasonCode`` is what the emulator and our docs use.
        self._voice(agent, "NotReady", {"reasonCode": reason} if reason else None)

    def set_after_call_work(self, agent: AgentLogin) -> None:
        self._voice(agent, "AfterCallWork")

    def request_offer(self, agent: AgentLogin, campaign: str) -> None:
        """Start the campaign's preview session once, then ask for a record; the record arrives
        as an ``offer`` signal (or an ``other`` signal with reason ``no_records``)."""
        path = f"{API}/me/outbound-campaigns/{urllib.parse.quote(campaign, safe='')}"
        started = list(self.state.get("preview_sessions") or [])
        if campaign not in started:
            self._start_preview(agent, campaign, path)
        try:
            self._request("POST", path, agent, body={"operationName": "GetPreviewRecord"})
        except ProviderError as exc:
            if exc.code != "2" or campaign not in started:
                raise
            # Our state said started but the platform lost it (a new server session): once more.
            self._start_preview(agent, campaign, path)
            self._request("POST", path, agent, body={"operationName": "GetPreviewRecord"})

    def _start_preview(self, agent: AgentLogin, campaign: str, path: str) -> None:
        body: dict[str, Any] = {
            "operationName": "StartPreviewSession",
            "devicePath": self._device_path(agent),
        }
        if self.account.options.get("application_id"):
            body["applicationId"] = str(self.account.options["application_id"])
        self._request("POST", path, agent, body=body)
        started = [c for c in self.state.get("preview_sessions") or [] if c != campaign]
        self.state["preview_sessions"] = [*started, campaign]

    # -- calls ------------------------------------------------------------------------------
    def dial(self, request: DialRequest) -> DialResult:
        """Dial the offered record (seed 004: ``outboundRecord`` as received in the
        PreviewRecord) or a plain number (``destination``); then read the call list for the id."""
        agent = request.agent
        device_id = self._device_id(agent)
        body: dict[str, Any] = {"operationName": "Dial", "devicePath": f"/devices/{device_id}"}
        record = (request.offer or {}).get("record")
        if isinstance(record, Mapping):
            body["outboundRecord"] = {**record, "phoneNumber": record.get("phoneNumber") or request.number}
        else:
            body["destination"] = {"phoneNumber": request.number}
        raw = self._request(
            "POST", f"{API}/me/devices/{urllib.parse.quote(device_id, safe='')}/calls", agent, body=body
        )
        try:
            call = self._find_call(self.list_calls(agent), request)
        except ProviderError as exc:  # the dial went out; the id will come over CometD
            log.warning("genesys: dial accepted but the call list could not be read: %s", exc)
            call = None
        if call is None:
            return DialResult(call_id="", raw=raw)
        return DialResult(call_id=str(call.get("id") or ""), raw={**raw, "call": call})

    def list_calls(self, agent: AgentLogin) -> list[dict[str, Any]]:
        """The agent's calls (``GET /api/v2/me/calls``), released ones included while listed."""
        calls = self._request("GET", f"{API}/me/calls", agent).get("calls") or []
        return [c for c in calls if isinstance(c, dict)]

    def call_live(self, agent: AgentLogin, call_id: str) -> bool:
        """``GET /me/calls`` lists a released call for a while (state ``Released``), then drops it:
        live is listed and not released."""
        return any(
            str(call.get("id")) == str(call_id) and call.get("state") != "Released"
            for call in self.list_calls(agent)
        )

    def lookup_call(self, request: DialRequest) -> DialResult | None:
        """After an ambiguous dial: the listed call for this record (or number), if any."""
        call = self._find_call(self.list_calls(request.agent), request)
        return DialResult(call_id=str(call.get("id") or ""), raw={"call": call}) if call else None

    @staticmethod
    def _find_call(calls: Sequence[Mapping[str, Any]], request: DialRequest) -> Mapping[str, Any] | None:
        """The newest call for the request's record handle, else its number; a live call wins
        over a released one (an earlier attempt may still be listed)."""
        record = (request.offer or {}).get("record") or {}
        handle = str(record.get("recordHandle") or "") if isinstance(record, Mapping) else ""
        wanted = _digits(request.number or (record.get("phoneNumber") if isinstance(record, Mapping) else ""))

        def matches(call: Mapping[str, Any]) -> bool:
            user_data = call.get("userData") or {}
            if handle and str(user_data.get("GSW_RECORD_HANDLE", "")) == handle:
                return True
            if handle and user_data.get("GSW_RECORD_HANDLE") not in (None, ""):
                return False  # another record's call to the same number
            numbers = {_digits(call.get("dnis"))}
            for party in call.get("participants") or []:
                numbers |= {_digits(party.get("phoneNumber")), _digits(party.get("digits"))}
            return bool(wanted) and wanted in numbers

        found = [c for c in calls if matches(c)]
        live = [c for c in found if c.get("state") != "Released"]
        pick = live or found
        return pick[-1] if pick else None

    def hang_up(self, agent: AgentLogin, call_id: str, *, log_id: str = "") -> None:
        """``Hangup``. A call already released (statusCode 2) counts as hung up."""
        try:
            self._request(
                "POST",
                f"{API}/me/calls/{urllib.parse.quote(call_id, safe='')}",
                agent,
                body={"operationName": "Hangup"},
            )
        except ProviderError as exc:
            if exc.code != "2":
                raise
            log.info("genesys: call %s was already released", call_id)

    def _record_body(self, agent: AgentLogin, offer: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
        record = offer.get("record") if isinstance(offer.get("record"), Mapping) else {}
        handle = record.get("recordHandle", offer.get("recordHandle"))
        if handle in (None, ""):
            return None
        body: dict[str, Any] = {
            "campaignName": record.get("campaignName") or offer.get("campaignName") or "",
            "callingList": record.get("callingList") or offer.get("callingList") or "",
            "devicePath": self._device_path(agent),
        }
        application_id = offer.get("applicationId") or self.account.options.get("application_id")
        if application_id:
            body["applicationId"] = str(application_id)
        return f"{API}/me/outbound-records/{urllib.parse.quote(str(handle), safe='')}", body

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
        """``CompleteRecord`` (with a ``callResult`` when the disposition has one), or
        ``RescheduleRecord`` for a booked callback (``callback_at``) or a non-final outcome.
        A call that was not dialed from a record has nothing to record at GWS. Notes stay ours."""
        target = self._record_body(agent, offer or {})
        if target is None:
            log.info("genesys: call %s has no outbound record; disposition kept locally", call_id)
            return
        path, body = target
        if callback_at is not None or not final:
            retry = int(self.account.options.get("retry_seconds", 3600))
            body.update(
                operationName="RescheduleRecord",
                callbackType=self.account.options.get("callback_type", "Personal")
                if callback_at is not None
                else "Campaign",
                timestamp=int(callback_at if callback_at is not None else time.time() + retry),
            )
        else:
            body["operationName"] = "CompleteRecord"
            results = {**DEFAULT_CALL_RESULTS, **dict(self.account.options.get("call_results") or {})}
            if results.get(disposition):
                body["callResult"] = results[disposition]
        self._request("POST", path, agent, body=body)

    def skip(
        self,
        agent: AgentLogin,
        offer: Mapping[str, Any],
        *,
        stay_ready: bool = True,
        retry_at: int | None = None,
    ) -> None:
        """``RescheduleRecord`` as a Campaign callback due at ``retry_at`` (the campaign's retry
        delay): the record leaves the pool until then, for every agent. ``RejectRecord`` (the
        documented "skip: back to the pool") puts it straight back, and the next
        ``GetPreviewRecord`` hands the same record to the same agent: a skip that never moves on.
        The agent state is not touched (no echoes)."""
        target = self._record_body(agent, offer)
        if target is None:
            raise self.error("This lead has no Genesys record to give back.", code="1")
        path, body = target
        retry = int(self.account.options.get("retry_seconds", 3600))
        body.update(
            operationName="RescheduleRecord",
            callbackType="Campaign",
            timestamp=int(retry_at if retry_at is not None else time.time() + retry),
        )
        self._request("POST", path, agent, body=body)

    # -- notifications ----------------------------------------------------------------------
    def open_notifications(
        self,
        agent: AgentLogin,
        *,
        on_message: Callable[[dict[str, Any]], None],
        on_rehandshake: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
        channels: Sequence[str] = DEFAULT_CHANNELS,
    ) -> BayeuxClient:
        """A Bayeux client on this adapter's session (cookies, Basic auth, CSRF header). Feed each
        message to :meth:`parse`; re-read state (:meth:`list_calls`) in ``on_rehandshake``.
        Call ``start()`` (a thread) or ``run()`` on it, and ``stop()`` to end."""
        self._authenticate(agent)
        if not self.state.get("csrf_token"):
            self._refresh_csrf(agent)

        def on_http_error(response: requests.Response) -> None:
            if response.status_code == 403:
                try:
                    self._refresh_csrf(agent)
                except ProviderError as exc:
                    log.warning("genesys: could not refresh the CSRF token for CometD: %s", exc)

        return BayeuxClient(
            f"{self.http.base_url}{API}/notifications",
            session=self.http.session,
            channels=channels,
            on_message=on_message,
            on_rehandshake=on_rehandshake,
            on_subscribed=on_subscribed,
            headers=self._csrf_headers,
            on_http_error=on_http_error,
            connect_timeout=self.account.connect_timeout,
            network_delay=self.account.read_timeout,
            name=f"gws-cometd-{agent.ref}",
        )

    def reread(self, agent: AgentLogin) -> Iterator[dict[str, Any]]:
        """After a CometD re-handshake (events in the gap are lost): the agent's calls as if they
        had arrived on ``/v2/me/calls``, then the agent state as if on ``/v2/me/devices``
        (``GET /api/v2/me/devices``), so a change made on the platform meanwhile still counts."""
        for call in self.list_calls(agent):
            yield {
                "channel": CALLS_CHANNEL,
                "data": {
                    "messageType": "CallStateChangeMessage",
                    "notificationType": "StatusChange",
                    "call": call,
                },
            }
        for device in self.list_devices(agent)[:1]:
            yield {
                "channel": DEVICES_CHANNEL,
                "data": {"messageType": "DeviceStateChangeMessage", "devices": [device]},
            }

    # -- signals ----------------------------------------------------------------------------
    def parse(self, payload: Any) -> list[Signal]:
        """A CometD data message (``{"channel", "data", "id"?}``) or its bare ``data`` -> signals.
        A list is parsed item by item. Never raises."""
        if isinstance(payload, list):
            return [signal for item in payload for signal in self.parse(item)]
        try:
            return self._parse_one(payload)
        except Exception:
            log.exception("genesys: could not parse a notification")
            return [Signal(kind="other", key=f"genesys:other:{_digest(payload)}", raw=payload)]

    def _parse_one(self, payload: Any) -> list[Signal]:
        if not isinstance(payload, dict):
            return [Signal(kind="other", key=f"genesys:other:{_digest(payload)}", raw=payload)]
        wrapped = "channel" in payload and isinstance(payload.get("data"), dict)
        data: dict[str, Any] = payload["data"] if wrapped else payload
        # The Bayeux message id tells a new event from a repeat when the content alone cannot.
        event = str(payload.get("id") or "") if wrapped else ""
        kind = data.get("messageType")
        if kind == "CallStateChangeMessage":
            return [self._call_signal(data, event, payload)]
        if kind == "OutboundRecordMessage":
            return [self._record_signal(data, event, payload)]
        if kind == "OutboundCampaignMessage":
            note = str(data.get("notificationType") or "")
            name = str(data.get("campaignName") or (data.get("outboundCampaign") or {}).get("name") or "")
            return [
                Signal(
                    kind="ack",
                    key=f"genesys:campaign:{name}:{note}:{event or _digest(data)}",
                    data={"notificationType": note, "campaignName": name},
                    raw=payload,
                )
            ]
        if kind == "DeviceStateChangeMessage":
            return [self._agent_signal(data, event, payload)]
        return [Signal(kind="other", key=f"genesys:other:{event or _digest(data)}", raw=payload)]

    def _call_signal(self, data: dict[str, Any], event: str, raw: Any) -> Signal:
        call = data.get("call") if isinstance(data.get("call"), dict) else {}
        call_id = str(call.get("id") or "")
        platform_state = str(call.get("state") or "")
        notification = str(data.get("notificationType") or "StatusChange")
        extensions = data.get("extensions") if isinstance(data.get("extensions"), dict) else {}
        call_result = str(extensions.get("CallResult") or call.get("callResult") or "")
        user_data = call.get("userData") if isinstance(call.get("userData"), dict) else {}
        parties = call.get("participants") or [{}]
        # Not data["phoneNumber"]: in the seed that is the agent's own DN (5005), not the customer.
        number = str((parties[0] or {}).get("phoneNumber") or call.get("dnis") or "")
        info = {
            "platform_state": platform_state,
            "notification_type": notification,
            "conn_id": str(call.get("connId") or ""),
            "number": number,
            "record_handle": user_data.get("GSW_RECORD_HANDLE"),
            "call_result": call_result,
            "duration": call.get("duration"),
            "capabilities": list(call.get("capabilities") or []),
        }
        if notification != "StatusChange":
            key = f"genesys:{call_id}:{notification}:{event or _digest(data)}"
            return Signal(kind="call", key=key, call_id=call_id, data=info, raw=raw)
        state, reason = CALL_STATES.get(platform_state), ""
        if platform_state == "Released":
            if call_result in ENDED_RESULTS:
                state = ENDED
            else:
                state = FAILED
                reason = (
                    RELEASE_REASONS.get(call_result) or re.sub(r"(?<!^)(?=[A-Z])", "_", call_result).lower()
                )
        return Signal(
            kind="call",
            key=f"genesys:{call_id}:{platform_state}",
            call_id=call_id,
            state=state,
            reason=reason,
            data=info,
            raw=raw,
        )

    def _record_signal(self, data: dict[str, Any], event: str, raw: Any) -> Signal:
        note = str(data.get("notificationType") or "")
        record = data.get("record") if isinstance(data.get("record"), dict) else {}
        handle = record.get("recordHandle", data.get("recordHandle"))
        campaign = str(record.get("campaignName") or data.get("campaignName") or "")
        if note == "PreviewRecord" and handle is not None:
            offer = {
                "record": record,
                "recordHandle": handle,
                "campaignName": campaign,
                "callingList": record.get("callingList", ""),
                "phoneNumber": record.get("phoneNumber", ""),
                "applicationId": (record.get("userData") or {}).get("GSW_APPLICATION_ID", ""),
            }
            key = f"genesys:record:{handle}:offer:{event or _digest(record)}"
            return Signal(kind="offer", key=key, data=offer, raw=raw)
        if note.endswith("Acknowledge"):
            key = f"genesys:record:{handle}:{note}:{event or _digest(data)}"
            return Signal(
                kind="ack",
                key=key,
                data={"notificationType": note, "recordHandle": handle, "campaignName": campaign},
                raw=raw,
            )
        reason = "no_records" if note == "NoRecords" else ""
        return Signal(
            kind="other",
            key=f"genesys:outbound:{note}:{event or _digest(data)}",
            reason=reason,
            data={"notificationType": note, "campaignName": campaign},
            raw=raw,
        )

    def _agent_signal(self, data: dict[str, Any], event: str, raw: Any) -> Signal:
        devices = data.get("devices") or [{}]
        device = devices[0] if isinstance(devices[0], dict) else {}
        user_state = device.get("userState") if isinstance(device.get("userState"), dict) else {}
        platform_state = str(user_state.get("state") or "")
        # Agent state is idempotent, and GWS messages carry no event id of their own: without a
        # Bayeux id every message is treated as new.
        key = f"genesys:agent:{device.get('id', '')}:{platform_state}:{event or uuid.uuid4().hex}"
        return Signal(
            kind="agent",
            key=key,
            state=AGENT_STATES.get(platform_state),
            reason=str(user_state.get("reason") or ""),
            data={"platform_state": platform_state, "device_id": device.get("id", "")},
            raw=raw,
        )

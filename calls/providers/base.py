"""The contract every telephony platform adapter implements.

Adapters are plain Python over ``requests``: no Django models cross this line, so each adapter is
tested against its emulator without a database. The calls engine (``calls/services/``) turns
model rows into the dataclasses below, and persists :attr:`Provider.state` (GUIDs, cookies, CSRF
tokens) between processes, because a dial placed by a Celery worker and the event loop run by
``run_streams`` must share one platform session.

All knowledge of a platform lives in its adapter: what it can do (the capability attributes on
:class:`Provider`), who it knows an agent as (:attr:`Provider.identity_fields`,
:meth:`Provider.agent_login`), its payload shapes (:meth:`Provider.parse`,
:meth:`Provider.parse_offer`) and how its signals reach us (:attr:`Provider.event_stream`). The
rest of the code asks; ``tests/test_platform_literals.py`` fails when it names a platform instead.

Errors: every documented platform failure becomes a :class:`ProviderError` that says whether a
retry can help and carries the platform's own code plus a sentence an agent can read.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

import requests

log = logging.getLogger("calls.providers")

# Our call states (DESIGN.md "The call's life"); adapters map platform signals onto these.
DIALING = "dialing"
AGENT_RINGING = "agent_ringing"
AGENT_CONNECTED = "agent_connected"
CUSTOMER_RINGING = "customer_ringing"
CONNECTED = "connected"
ENDED = "ended"
FAILED = "failed"

# Failure reasons shown to the agent.
REASON_BUSY = "busy"
REASON_NO_ANSWER = "no_answer"
REASON_PLATFORM = "platform_error"

# How a platform's signals reach us (``Provider.event_stream``); ``run_streams`` keeps one loop of
# that kind per signed-in agent session (calls/streams.py).
POLL = "poll"  # ``poll_event`` in a loop: one long poll after another
PUSH = "push"  # ``open_notifications``: a client thread calls back; ``reread`` after a gap

# Normalized keys an adapter's :meth:`Provider.parse` puts in ``Signal.data`` next to the vendor's
# own, for the details the engine keeps on the call (``calls.services.life.absorb_data``).
TALK_SECONDS = "talk_seconds"  # int seconds the customer was connected
RECORDING_URL = "recording_url"  # the call's recording
LOG_ID = "log_id"  # the platform's second call reference (Ryng logID), when it has one
CONNECTED_AT = "connected_at"  # ISO 8601: when the customer connected, by the platform's clock
# True when the signal says the platform recorded our end and disposition (Ryng's terminal callback
# after End Preview Call carries callDisposed): an end still owed is settled by it.
PLATFORM_CLOSED = "platform_closed"

# Keys that hold the customer's name among an offer's fields (see :meth:`Offer.from_fields`).
NAME_KEYS = ("name", "Name", "customerName", "CustomerName")


class UnknownPlatform(ValueError):
    """A platform name no adapter is registered for (``calls.providers.ADAPTERS``)."""


class ProviderError(Exception):
    """A platform said no, or could not be reached.

    ``permanent``: retrying the same request cannot succeed (bad token, number not offered).
    ``code``: the platform's own code (``"100-006"``, ``"403"``, GWS ``statusCode`` ``"20"``, or
    ``"timeout"``/``"connection"`` for transport failures). ``message``: plain words for an agent.
    ``ambiguous``: the request may have reached the platform (a read timeout), so a dial must be
    looked up rather than repeated.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "",
        permanent: bool = True,
        platform: str = "",
        http_status: int | None = None,
        ambiguous: bool = False,
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.permanent = permanent
        self.platform = platform
        self.http_status = http_status
        self.ambiguous = ambiguous

    def __str__(self) -> str:
        code = f" [{self.code}]" if self.code else ""
        return f"{self.platform or 'platform'}: {self.message}{code}"


@dataclass(frozen=True)
class AccountConfig:
    """One telephony account. ``credentials`` never appears in a repr, a log or a template."""

    platform: str
    base_url: str
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = 3.05
    read_timeout: float = 10.0
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Identity:
    """An agent's identity on one platform as stored (``calls.models.PlatformIdentity``): which
    fields a platform uses, and what they mean there, is its :attr:`Provider.identity_fields`."""

    ref: str = ""
    username: str = ""
    phone: str = ""


# The fields of :class:`Identity`, in the order forms show them.
IDENTITY_FIELDS = ("ref", "username", "phone")


@dataclass(frozen=True)
class AgentLogin:
    """Who the platform knows the agent as (built by :meth:`Provider.agent_login`): Ryng agentID,
    Huawei workno, Genesys username."""

    ref: str
    password: str = field(default="", repr=False)
    phone: str = ""  # Huawei phonenum; Genesys place/device hint
    username: str = ""  # Ryng agentUsername


@dataclass(frozen=True)
class Offer:
    """What a platform-born preview offer carries for the lead (:meth:`Provider.parse_offer`).

    ``raw_number``: the number as offered (dialed as is: Huawei's previewCallout must name one of
    the offered numbers exactly); the engine derives our E.164 from it. ``campaign_ref``: the
    platform's campaign (``Campaign.platform_campaign_id``), "" when the offer does not say.
    """

    raw_number: str = ""
    name: str = ""
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    campaign_ref: str = ""

    @classmethod
    def from_fields(
        cls,
        fields: Mapping[str, Any],
        *,
        raw_number: str = "",
        name: str = "",
        campaign_ref: str = "",
        name_keys: Iterable[str] = NAME_KEYS,
    ) -> Offer:
        """The customer's name taken out of ``fields`` (the first of ``name_keys`` with a value,
        else ``name``), the rest as custom fields, cut to what a lead keeps."""
        rest = dict(fields)
        found = next((str(rest.pop(key)) for key in name_keys if rest.get(key)), "")
        custom = {str(k)[:80]: "" if v is None else str(v)[:500] for k, v in rest.items()}
        return cls(
            raw_number=str(raw_number or "").split(",")[0].strip(),
            name=(found or str(name or ""))[:200],
            custom_fields=custom,
            campaign_ref=str(campaign_ref or ""),
        )


def json_object(text: Any) -> dict[str, Any] | None:
    """``text`` read as a JSON object, or ``None`` (not a string, not JSON, not an object)."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return dict(value) if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class DialRequest:
    agent: AgentLogin
    number: str
    customer_name: str = ""
    platform_campaign_id: str = ""
    connect_callback_url: str = ""
    terminal_callback_url: str = ""
    # Platform-born offers: Huawei {"controlid", "dialeddigits", "callData"};
    # Genesys {"record": {...outbound record...}, "campaignName", "callingList", ...}.
    offer: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str = ""


@dataclass(frozen=True)
class DialResult:
    call_id: str  # Ryng callID, Huawei call id, Genesys call id
    log_id: str = ""  # Ryng logID
    raw: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Signal:
    """One platform event translated to our terms.

    ``kind``: ``call`` (a call state change), ``offer`` (a preview offer: Huawei preview event,
    GWS preview record), ``agent`` (agent/device state), ``ack`` (acknowledgements), ``other``.
    ``key`` is unique per real-world event so a repeated delivery is a no-op.

    ``data``: the vendor's details (kept with the event), plus the normalized keys the engine
    reads: :data:`TALK_SECONDS`, :data:`RECORDING_URL`, :data:`LOG_ID`; ``message`` and ``code``
    for a failure. An ``offer`` signal's ``data`` is kept on the lead (``Lead.offer``) and given
    back to the adapter to dial, skip and dispose; :meth:`Provider.parse_offer` reads it.
    """

    kind: str
    key: str
    call_id: str = ""
    state: str | None = None
    reason: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    raw: Any = None


class HttpClient:
    """The one HTTP chokepoint per adapter: a ``requests.Session``, timeouts on every call, and
    transport failures turned into retryable :class:`ProviderError`. Never logs credentials."""

    def __init__(self, account: AccountConfig, platform: str):
        self.account = account
        self.platform = platform
        self.base_url = account.base_url.rstrip("/")
        self.session = requests.Session()
        self.timeout = (account.connect_timeout, account.read_timeout)

    def request(
        self, method: str, path: str, *, timeout: tuple[float, float] | None = None, **kwargs: Any
    ) -> requests.Response:
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        try:
            response = self.session.request(method, url, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise ProviderError(
                "The telephony platform did not answer in time.",
                code="timeout",
                permanent=False,
                platform=self.platform,
            ) from exc
        except requests.ReadTimeout as exc:
            raise ProviderError(
                "The telephony platform did not answer in time.",
                code="timeout",
                permanent=False,
                platform=self.platform,
                ambiguous=True,
            ) from exc
        except requests.ConnectionError as exc:
            raise ProviderError(
                "The telephony platform cannot be reached.",
                code="connection",
                permanent=False,
                platform=self.platform,
            ) from exc
        log.debug("%s %s %s -> %s", self.platform, method, path, response.status_code)
        return response

    def json(self, response: requests.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(
                f"The telephony platform sent an unreadable answer (HTTP {response.status_code}).",
                code=str(response.status_code),
                permanent=response.status_code < 500,
                platform=self.platform,
                http_status=response.status_code,
            ) from exc


class Notifications(Protocol):
    """A push client (:meth:`Provider.open_notifications`), e.g. :class:`calls.bayeux.BayeuxClient`."""

    def start(self) -> threading.Thread: ...

    def stop(self, timeout: float | None = None) -> None: ...


class Provider(ABC):
    """One platform. Instances are cheap; build one per account (and per agent session where the
    platform has one) with :func:`calls.providers.get_provider`.

    ``state`` is the platform session the caller persists between processes: Huawei ``guid``,
    Genesys ``cookies``/``csrf_token``. Adapters read and update it in place.

    Agent-session operations (``sign_in`` ... ``set_not_ready``) are no-ops for platforms without
    agent sessions (Ryng). Operations a platform lacks raise ``NotImplementedError``, which the
    engine treats as "not supported here" (documented per platform in ``docs/providers.md``).
    The class attributes below are the platform's description: the engine, the desk, the admin
    and the supervisor pages read them instead of naming a platform.
    """

    # The name stored in ``TelephonyAccount.platform`` (the registry's key) and the one people read.
    platform: ClassVar[str]
    label: ClassVar[str] = ""
    # Hints for the people who configure an account: the base URL's shape, the credentials JSON,
    # and what ``Campaign.platform_campaign_id`` holds.
    base_url_hint: ClassVar[str] = ""
    credentials_hint: ClassVar[str] = '{"agent_password": "..."}'
    campaign_ref_hint: ClassVar[str] = ""

    # -- capabilities: what the rest of the code asks instead of naming a platform -------------
    # Agents sign in to the platform and have an agent state there (ready / not ready), kept
    # in a ``PlatformSession`` and followed by an event stream (``run_streams``).
    agent_sessions: ClassVar[bool] = False
    # The platform hands out the leads (preview offers) rather than our own queue.
    offers_leads: ClassVar[bool] = False
    # ``lookup_call`` can find a dial whose answer was lost (otherwise wait for signals).
    can_look_up_calls: ClassVar[bool] = False
    # ``append_leads`` pushes our imported leads into the platform's campaign.
    takes_pushed_leads: ClassVar[bool] = False
    # Hanging up and disposing are one request: the engine never calls ``hang_up`` (it may raise
    # NotImplementedError); the call ends on our side at once and on the platform when the
    # disposition is sent (``dispose``).
    ends_on_dispose: ClassVar[bool] = False
    # Signals arrive as HTTP callbacks to our webhook (with the per-account secret in the URL):
    # ``/calls/hooks/<platform>/<secret>/<kind>``, one URL per kind in ``callback_kinds``.
    receives_callbacks: ClassVar[bool] = False
    callback_kinds: ClassVar[tuple[str, ...]] = ()
    # The platform call id is needed to hang up (a hang-up before the dial's answer waits).
    hang_up_needs_call_id: ClassVar[bool] = False
    # How signals reach us for a signed-in agent session: :data:`POLL`, :data:`PUSH`, or "" (none,
    # e.g. callbacks only).
    event_stream: ClassVar[str] = ""

    # -- identity: who the platform knows an agent as ------------------------------------------
    # The :class:`Identity` fields this platform uses, each with its label for the admin (in the
    # platform's own words). The fields not listed stay empty.
    identity_fields: ClassVar[Mapping[str, str]] = {"ref": "Agent id"}

    # Django templates call what is callable: a template reads an adapter class's attributes
    # (``account.provider_class.label``) without instantiating it.
    do_not_call_in_templates: ClassVar[bool] = True

    def __init__(self, account: AccountConfig, state: MutableMapping[str, Any] | None = None):
        self.account = account
        self.state: MutableMapping[str, Any] = state if state is not None else {}
        self.http = HttpClient(account, self.platform)

    def error(self, message: str, **kwargs: Any) -> ProviderError:
        return ProviderError(message, platform=self.platform, **kwargs)

    @classmethod
    def agent_login(cls, identity: Identity, credentials: Mapping[str, Any]) -> AgentLogin:
        """Who the platform knows the agent as, from their stored identity and the account's
        (decrypted) credentials. Default: ``ref`` and ``phone`` as stored, the account's shared
        ``agent_password`` (agents on one account share it in this design)."""
        return AgentLogin(
            ref=identity.ref,
            password=str(credentials.get("agent_password", "")),
            phone=identity.phone,
            username=identity.username,
        )

    @classmethod
    def parse_offer(cls, data: Mapping[str, Any]) -> Offer:
        """What an ``offer`` signal's ``data`` (as :meth:`parse` made it) carries for the lead.
        Never raises. Default: the normalized keys ``number``, ``name``, ``custom_fields`` and
        ``campaign``, for a platform whose :meth:`parse` puts them there."""
        fields = data.get("custom_fields")
        return Offer.from_fields(
            dict(fields) if isinstance(fields, Mapping) else {},
            raw_number=str(data.get("number") or ""),
            name=str(data.get("name") or ""),
            campaign_ref=str(data.get("campaign") or ""),
        )

    @classmethod
    def offer_record(cls, data: Mapping[str, Any]) -> str:
        """What names the platform's record behind an ``offer`` signal's ``data``: the same each
        time the platform offers that record again (a skipped record it put back in its pool), so
        the engine never shows an agent a record they skipped in their session. "" where the
        platform gives no way to tell (every offer is then a new record). Never raises."""
        return ""

    # -- agent session ------------------------------------------------------------------------
    def sign_in(self, agent: AgentLogin) -> None:
        """Sign the agent in to the platform (Huawei sign-in, GWS contact-center session)."""

    def sign_out(self, agent: AgentLogin) -> None:
        """Sign the agent out of the platform."""

    def signed_in_state(self) -> str:
        """The agent state (``ready`` / ``not_ready``) :meth:`sign_in` leaves the agent in; ""
        where the platform has no agent state (Ryng)."""
        return ""

    def set_ready(self, agent: AgentLogin) -> None:
        """Make the agent available (Huawei sayfree, GWS Ready)."""

    def set_not_ready(self, agent: AgentLogin, reason: str = "") -> None:
        """Make the agent unavailable (Huawei saybusy, GWS NotReady)."""

    def request_offer(self, agent: AgentLogin, campaign: str) -> None:
        """Ask the platform for the next preview offer (GWS StartPreviewSession/GetPreviewRecord).
        The offer itself arrives as an ``offer`` :class:`Signal` on the event stream."""

    # -- event stream (``event_stream``) ---------------------------------------------------------
    def poll_event(self, agent: AgentLogin, timeout: float | None = None) -> Any:
        """:data:`POLL`: one poll; the payload for :meth:`parse`, or ``None`` when there was
        nothing. Raise :class:`ProviderError`; :meth:`session_lost` says which mean "sign in again"."""
        raise NotImplementedError

    def session_lost(self, error: ProviderError) -> bool:
        """Whether ``error`` means the platform dropped the agent's session: the stream then adopts
        a session another process stored, or signs the agent in again."""
        return False

    def open_notifications(
        self,
        agent: AgentLogin,
        *,
        on_message: Callable[[Any], None],
        on_rehandshake: Callable[[], None] | None = None,
        on_subscribed: Callable[[], None] | None = None,
    ) -> Notifications:
        """:data:`PUSH`: a client (not started) on this adapter's session that hands each message
        to ``on_message`` (for :meth:`parse`), calls ``on_subscribed`` each time it listens (a
        message sent before that is lost: nothing is asked for until then) and ``on_rehandshake``
        after a gap in which messages may have been lost."""
        raise NotImplementedError

    def reread(self, agent: AgentLogin) -> Iterable[Any]:
        """After a gap in the stream: the agent's current calls, then agent state, as payloads for
        :meth:`parse` with the keys the stream would have used (a state already seen is a no-op).
        Lazy: each is read when the previous one has been applied."""
        return ()

    # -- calls -----------------------------------------------------------------------------------
    @abstractmethod
    def dial(self, request: DialRequest) -> DialResult:
        """Place the call. Raise :class:`ProviderError`; ``ambiguous`` when it may have gone out."""

    def lookup_call(self, request: DialRequest) -> DialResult | None:
        """After an ambiguous dial: find the call the platform placed, or ``None`` if none was.
        Raise ``NotImplementedError`` where the platform offers no way to look (Ryng)."""
        raise NotImplementedError

    def call_live(self, agent: AgentLogin, call_id: str) -> bool:
        """Whether the platform still has call ``call_id`` live (not released). The reconciler
        asks before it ends a call whose final signal never came. Raise ``NotImplementedError``
        where the platform offers no way to look (``can_look_up_calls`` False)."""
        raise NotImplementedError

    @classmethod
    def can_end_call(cls, call_id: str, log_id: str = "") -> bool:
        """Whether the ids we hold for a call are enough to end it on the platform (hang up, or
        End Preview Call on Ryng). Without them the engine never ends the call on our side alone:
        the platform may still have it (docs/shift.md)."""
        return bool(str(call_id or "").strip()) or not cls.hang_up_needs_call_id

    @abstractmethod
    def hang_up(self, agent: AgentLogin, call_id: str, *, log_id: str = "") -> None:
        """End the live call."""

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
        """Record the outcome on the platform: Ryng End Preview Call, GWS CompleteRecord or
        RescheduleRecord (``callback_at`` epoch seconds). Huawei keeps dispositions ours: no-op."""

    def skip(
        self,
        agent: AgentLogin,
        offer: Mapping[str, Any],
        *,
        stay_ready: bool = True,
        retry_at: int | None = None,
    ) -> None:
        """Give a previewed lead back without calling. ``stay_ready``: whether the agent is Ready
        and must stay so where skipping goes through the agent state (Huawei). ``retry_at``
        (epoch seconds): when the campaign may offer the record again (its retry delay), where
        the platform can hold a record back until then (GWS)."""

    def skip_echoes(self, *, stay_ready: bool = True) -> tuple[str, ...]:
        """The agent states (``ready`` / ``not_ready``, in order) the platform reports because of
        :meth:`skip`: the engine expects them as echoes of its own request, never as a change
        made elsewhere. Empty where a skip leaves the agent state alone."""
        return ()

    def append_leads(
        self,
        platform_campaign_id: str,
        rows: list[Mapping[str, Any]],
        *,
        fmt: str = "json",
        agent_mapping: str = "all-agents",
        agents: list[str] | None = None,
        custom_field_names: Mapping[str, str] | None = None,
        name: str = "",
        connect_callback_url: str = "",
        terminal_callback_url: str = "",
        accepted: Callable[[int], None] | None = None,
    ) -> None:
        """Push leads to the platform's campaign (Ryng Append Campaign, ``fmt`` ``json``/``csv``).
        Where the rows go in several requests, ``accepted(n)`` is called after each one the
        platform took, with its number of rows (in order, from the first), so a failure part way
        leaves the caller knowing which rows arrived and a retry sends only the others."""
        raise NotImplementedError

    # -- signals in -----------------------------------------------------------------------------
    @abstractmethod
    def parse(self, payload: Any) -> list[Signal]:
        """Translate one inbound payload (a Ryng callback body, a Huawei event, a CometD data
        message) into signals. Tolerant of the vendors' quirks; never raises on odd input:
        unknown payloads become ``Signal(kind="other")``."""

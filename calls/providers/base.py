"""The contract every telephony platform adapter implements.

Adapters are plain Python over ``requests``: no Django models cross this line, so each adapter is
tested against its emulator without a database. The calls engine (``calls/services.py``) turns
model rows into the dataclasses below, and persists :attr:`Provider.state` (GUIDs, cookies, CSRF
tokens) between processes, because a dial placed by a Celery worker and the event loop run by
``run_streams`` must share one platform session.

Errors: every documented platform failure becomes a :class:`ProviderError` that says whether a
retry can help and carries the platform's own code plus a sentence an agent can read.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

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
class AgentLogin:
    """Who the platform knows the agent as: Ryng agentID, Huawei workno, Genesys username."""

    ref: str
    password: str = field(default="", repr=False)
    phone: str = ""  # Huawei phonenum; Genesys place/device hint
    username: str = ""  # Ryng agentUsername


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


class Provider(ABC):
    """One platform. Instances are cheap; build one per account (and per agent session where the
    platform has one) with :func:`calls.providers.get_provider`.

    ``state`` is the platform session the caller persists between processes: Huawei ``guid``,
    Genesys ``cookies``/``csrf_token``. Adapters read and update it in place.

    Agent-session operations (``sign_in`` ... ``set_not_ready``) are no-ops for platforms without
    agent sessions (Ryng). Operations a platform lacks raise ``NotImplementedError``, which the
    engine treats as "not supported here" (documented per platform in ``docs/providers.md``).
    """

    platform: ClassVar[str]
    # Whether the platform hands out the leads (preview offers) rather than us.
    platform_offers_leads: ClassVar[bool] = False

    def __init__(self, account: AccountConfig, state: MutableMapping[str, Any] | None = None):
        self.account = account
        self.state: MutableMapping[str, Any] = state if state is not None else {}
        self.http = HttpClient(account, self.platform)

    def error(self, message: str, **kwargs: Any) -> ProviderError:
        return ProviderError(message, platform=self.platform, **kwargs)

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

    # -- calls -----------------------------------------------------------------------------------
    @abstractmethod
    def dial(self, request: DialRequest) -> DialResult:
        """Place the call. Raise :class:`ProviderError`; ``ambiguous`` when it may have gone out."""

    def lookup_call(self, request: DialRequest) -> DialResult | None:
        """After an ambiguous dial: find the call the platform placed, or ``None`` if none was.
        Raise ``NotImplementedError`` where the platform offers no way to look (Ryng)."""
        raise NotImplementedError

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

    def skip(self, agent: AgentLogin, offer: Mapping[str, Any], *, stay_ready: bool = True) -> None:
        """Give a previewed lead back without calling (GWS RejectRecord). ``stay_ready``: whether
        the agent is Ready and must stay so where skipping goes through the agent state (Huawei)."""

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
    ) -> None:
        """Push leads to the platform's campaign (Ryng Append Campaign, ``fmt`` ``json``/``csv``)."""
        raise NotImplementedError

    # -- signals in -----------------------------------------------------------------------------
    @abstractmethod
    def parse(self, payload: Any) -> list[Signal]:
        """Translate one inbound payload (a Ryng callback body, a Huawei event, a CometD data
        message) into signals. Tolerant of the vendors' quirks; never raises on odd input:
        unknown payloads become ``Signal(kind="other")``."""

"""Telephony accounts, calls, their events and dial attempts."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.db import models
from django.urls import reverse

from calls import crypto
from calls.providers import per_platform, platform_choices, provider_class
from calls.providers.base import AccountConfig, Identity, Provider


def _webhook_secret() -> str:
    return secrets.token_urlsafe(32)


# The platforms, from the one registry (calls.providers.ADAPTERS): ``Platform.<NAME>`` per adapter,
# valued by its ``platform`` and labelled by its ``label``.
Platform = models.TextChoices(
    "Platform", [(name.upper(), (name, label)) for name, label in platform_choices()]
)


class TelephonyAccount(models.Model):
    name = models.CharField(max_length=120)
    platform = models.CharField(max_length=10, choices=Platform.choices)
    base_url = models.URLField(help_text=per_platform("base_url_hint"))
    # Encrypted JSON (calls.crypto): the adapter's ``credentials_hint`` says what it holds.
    credentials_encrypted = models.TextField(blank=True, editable=False)
    webhook_secret = models.CharField(max_length=64, unique=True, default=_webhook_secret, editable=False)
    options = models.JSONField(default=dict, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_platform_display()})"

    @property
    def credentials(self) -> dict[str, Any]:
        return crypto.decrypt(self.credentials_encrypted)

    @credentials.setter
    def credentials(self, value: dict[str, Any]) -> None:
        self.credentials_encrypted = crypto.encrypt(value)

    @property
    def provider_class(self) -> type[Provider]:
        """The account's adapter class: its label and capabilities (raises for an unknown platform)."""
        return provider_class(self.platform)

    def callback_urls(self, **query: str) -> dict[str, str]:
        """Our callback URL per kind the platform calls back (``Provider.callback_kinds``), empty
        where it sends none. The per-account secret in the path is the only authentication such
        callbacks carry (they are not signed); ``query`` is appended (``call=<our call key>``)."""
        adapter = self.provider_class
        if not adapter.receives_callbacks:
            return {}
        suffix = f"?{urlencode(query)}" if query else ""
        return {
            kind: settings.PUBLIC_BASE_URL
            + reverse(
                "calls:callback",
                kwargs={"platform": self.platform, "secret": self.webhook_secret, "kind": kind},
            )
            + suffix
            for kind in adapter.callback_kinds
        }

    def config(self) -> AccountConfig:
        return AccountConfig(
            platform=self.platform,
            base_url=self.base_url,
            credentials=self.credentials,
            # An operator may tune how long an answer is waited for (``options.read_timeout``,
            # seconds); past it a dial's outcome is in doubt.
            read_timeout=float((self.options or {}).get("read_timeout") or AccountConfig.read_timeout),
            options=self.options,
        )


class PlatformSession(models.Model):
    """An agent's live session on a platform (Huawei GUID, GWS cookies and CSRF token), shared
    by the web, worker and streams processes."""

    class Status(models.TextChoices):
        SIGNED_OUT = "signed_out", "Signed out"
        SIGNED_IN = "signed_in", "Signed in"
        ERROR = "error", "Error"

    agent = models.ForeignKey("agentdesk.Agent", on_delete=models.CASCADE, related_name="platform_sessions")
    account = models.ForeignKey(TelephonyAccount, on_delete=models.CASCADE, related_name="sessions")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.SIGNED_OUT)
    # The adapter's session (GUID, cookies, CSRF token); the streams loop overwrites it.
    state = models.JSONField(default=dict, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Platform-driven presence (calls.services.platform_ask / agent_apply_platform_state): what
    # AgentDesk last asked the platform for, committed *before* the request goes out, and the
    # agent states its requests will still echo (oldest first); then what the platform last said.
    asked_state = models.CharField(max_length=12, blank=True, help_text="ready or not_ready")
    asked_at = models.DateTimeField(null=True, blank=True)
    asked_echoes = models.JSONField(default=list, blank=True)
    platform_state = models.CharField(max_length=12, blank=True, help_text="ready or not_ready")
    platform_state_at = models.DateTimeField(null=True, blank=True)
    # Since when run_streams listens to the platform's pushed messages for this session (None:
    # not listening). A push platform's offer asked for before then would be lost.
    listening_since = models.DateTimeField(null=True, blank=True)
    # When the agent last signed in to the platform from AgentDesk: their session there. A record
    # they skipped since is never shown to them again (calls.services.signals.lead_from_offer).
    signed_in_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["agent", "account"], name="platform_session_unique")]

    def __str__(self) -> str:
        return f"{self.agent} on {self.account} ({self.status})"

    @property
    def platform_overrides_ask(self) -> bool:
        """True when the platform reported a state other than the one AgentDesk last asked for,
        after it asked, with no echo of ours still on its way: someone else (a supervisor, the
        phone, the platform itself) changed the agent's state, and the platform's word wins."""
        if not self.platform_state or self.platform_state == self.asked_state or self.asked_echoes:
            return False
        if self.asked_at is None:
            return True
        return self.platform_state_at is not None and self.platform_state_at > self.asked_at


class PlatformIdentity(models.Model):
    """Who a platform knows an agent as: one row per agent and platform. Which fields a platform
    uses, and their labels, is its adapter's ``identity_fields``; the adapter turns the row into
    the login it sends (``Provider.agent_login``)."""

    agent = models.ForeignKey("agentdesk.Agent", on_delete=models.CASCADE, related_name="identities")
    platform = models.CharField(max_length=10, choices=Platform.choices)
    ref = models.CharField("agent id", max_length=150, blank=True)
    username = models.CharField(max_length=150, blank=True)
    phone = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["agent", "platform"]
        constraints = [models.UniqueConstraint(fields=["agent", "platform"], name="platform_identity_unique")]
        verbose_name_plural = "platform identities"

    def __str__(self) -> str:
        return f"{self.agent} on {self.get_platform_display()}: {self.ref or self.username}"

    def as_identity(self) -> Identity:
        return Identity(ref=self.ref, username=self.username, phone=self.phone)


class CallState(models.TextChoices):
    """DESIGN.md "The call's life". Order matters: a call only moves forward (see ``RANK``)."""

    PREVIEWING = "previewing", "Previewing"
    DIAL_REQUESTED = "dial_requested", "Dial requested"
    DIALING = "dialing", "Dialing"
    AGENT_RINGING = "agent_ringing", "Agent phone ringing"
    AGENT_CONNECTED = "agent_connected", "Agent connected"
    CUSTOMER_RINGING = "customer_ringing", "Customer ringing"
    CONNECTED = "connected", "Connected"
    ENDED = "ended", "Ended"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    DISPOSED = "disposed", "Disposed"


RANK = {
    CallState.PREVIEWING: 0,
    CallState.DIAL_REQUESTED: 1,
    CallState.DIALING: 2,
    CallState.AGENT_RINGING: 3,
    CallState.AGENT_CONNECTED: 4,
    CallState.CUSTOMER_RINGING: 5,
    CallState.CONNECTED: 6,
    CallState.ENDED: 7,
    CallState.FAILED: 7,
    CallState.SKIPPED: 8,
    CallState.DISPOSED: 9,
}
LIVE_STATES = {
    CallState.DIAL_REQUESTED,
    CallState.DIALING,
    CallState.AGENT_RINGING,
    CallState.AGENT_CONNECTED,
    CallState.CUSTOMER_RINGING,
    CallState.CONNECTED,
}

# A disposed call's notes may be corrected by its agent for this long (a typo, a missed detail).
NOTES_EDIT_WINDOW = timedelta(minutes=5)


class Call(models.Model):
    class FailureReason(models.TextChoices):
        BUSY = "busy", "Busy"
        NO_ANSWER = "no_answer", "No answer"
        PLATFORM_ERROR = "platform_error", "Platform error"
        COMPLIANCE = "compliance", "Blocked by a dial-time check"
        LOST = "lost", "No final signal from the platform"

    key = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # db_constraint=False: campaigns_lead is partitioned by campaign on PostgreSQL (campaigns
    # migration 0007), and a FOREIGN KEY can only name a key that contains the partition key.
    # Triggers keep the reference instead (calls migration 0004, docs/import.md "Partitions").
    lead = models.ForeignKey(
        "campaigns.Lead", on_delete=models.CASCADE, related_name="calls", db_constraint=False
    )
    campaign = models.ForeignKey("campaigns.Campaign", on_delete=models.CASCADE, related_name="calls")
    agent = models.ForeignKey("agentdesk.Agent", on_delete=models.PROTECT, related_name="calls")
    account = models.ForeignKey(TelephonyAccount, on_delete=models.PROTECT, related_name="calls")
    state = models.CharField(max_length=20, choices=CallState.choices, default=CallState.DIAL_REQUESTED)
    failure_reason = models.CharField(max_length=20, choices=FailureReason.choices, blank=True)
    failure_message = models.CharField(max_length=300, blank=True)
    failure_code = models.CharField(max_length=40, blank=True)
    platform_call_id = models.CharField(max_length=120, blank=True, db_index=True)
    platform_log_id = models.CharField(max_length=120, blank=True)
    number = models.CharField(max_length=20)
    compliance = models.JSONField(default=dict, blank=True, help_text="Dial-time checks and their results.")
    created_at = models.DateTimeField(auto_now_add=True)
    dialed_at = models.DateTimeField(null=True, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    disposed_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    # When the reconciler last found the call still live on the platform (its next look waits).
    reconciled_at = models.DateTimeField(null=True, blank=True)
    # The platform still has to hear this call's end: the agent's hang-up, or (Ryng) End Preview
    # Call with the disposition. When the next try is due; empty when nothing is owed. The
    # reconciler hands an owed end whose try never ran (a killed worker) back to its task.
    # Nullable with no default (SQLite adds such a column in place; see ``draft``).
    platform_end_due_at = models.DateTimeField(null=True, blank=True)
    platform_end_tries = models.PositiveSmallIntegerField(null=True, blank=True)
    platform_end_error = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001 - no default: SQLite
    talk_seconds = models.PositiveIntegerField(null=True, blank=True)
    recording_url = models.URLField(max_length=1000, blank=True)
    disposition = models.ForeignKey("campaigns.Disposition", null=True, blank=True, on_delete=models.SET_NULL)
    notes = models.TextField(blank=True)
    callback_at = models.DateTimeField(null=True, blank=True)
    # What the agent has typed and chosen so far ({"notes", "disposition", "callback_at"}, as the
    # form sends them), saved as they type: a reload, a crash or a second tab keeps it.
    # Nullable with no default: SQLite adds such a column in place (a default would rebuild the
    # table, which its lead_has_calls trigger forbids).
    draft = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["state", "state_changed_at"], name="call_state_idx"),
            # The wallboard's today and the reports' date ranges (calls.figures over a period).
            models.Index(fields=["created_at"], name="call_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Call {self.pk} {self.number} ({self.state})"

    @property
    def is_live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def talk_time(self) -> str:
        """How long the conversation lasted, ``m:ss``: the platform's figure when it sent one,
        else from connected to ended; "" for a call that never connected."""
        seconds = self.talk_seconds
        if seconds is None and self.connected_at and self.ended_at:
            seconds = max(0, int((self.ended_at - self.connected_at).total_seconds()))
        if seconds is None:
            return ""
        return f"{seconds // 60}:{seconds % 60:02d}"

    @property
    def rank(self) -> int:
        """How far along the call is (``RANK``): the desk never shows a call going back."""
        return RANK.get(self.state, 0)


class DialAttempt(models.Model):
    """Written (and committed) before the platform is called: the at-most-once guard."""

    class Status(models.TextChoices):
        PENDING = "pending", "About to call the platform"
        PLACED = "placed", "Placed"
        FAILED = "failed", "Failed"
        AMBIGUOUS = "ambiguous", "Outcome unknown (timeout)"

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="dial_attempt")
    key = models.CharField(max_length=80, unique=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    tries = models.PositiveSmallIntegerField(default=0)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Dial attempt {self.key} ({self.status})"


class CallEvent(models.Model):
    """Every signal from a platform, raw payload kept. ``(account, key)`` is unique: a repeat is a
    no-op. ``call`` is empty for signals about calls we do not know (kept for the record)."""

    account = models.ForeignKey(TelephonyAccount, on_delete=models.CASCADE, related_name="events")
    call = models.ForeignKey(Call, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    source = models.CharField(max_length=20, help_text="callback, stream, reconcile")
    kind = models.CharField(max_length=20)
    key = models.CharField(max_length=200)
    state = models.CharField(max_length=20, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    raw = models.TextField(blank=True)
    applied = models.BooleanField(default=False)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [models.UniqueConstraint(fields=["account", "key"], name="call_event_unique_key")]

    def __str__(self) -> str:
        return f"{self.kind} {self.key}"

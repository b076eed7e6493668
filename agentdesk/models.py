"""The agents domain: an agent's profile and presence (platform identities: calls.models)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

AGENTS_GROUP = "agents"
SUPERVISORS_GROUP = "supervisors"


class Presence(models.TextChoices):
    OFFLINE = "offline", "Offline"
    READY = "ready", "Ready"
    NOT_READY = "not_ready", "Not ready"
    ON_CALL = "on_call", "On call"
    WRAP_UP = "wrap_up", "Wrap-up"


# What an agent picks from when going Not ready, and when skipping a lead.
NOT_READY_REASONS = ["Break", "Lunch", "Meeting", "Training", "Coaching"]
NOT_READY_REASON_MAX = 40  # characters of one reason a supervisor lists (the board shows 80)
NOT_READY_REASONS_MAX = 12  # reasons in a campaign's list


def not_ready_reasons(campaign: Any) -> list[str]:
    """The Not-ready reasons an agent working ``campaign`` picks from: the campaign's own list
    (its supervisor edits it), else the standard one. ``campaign`` may be None."""
    return list(getattr(campaign, "not_ready_reasons", None) or NOT_READY_REASONS)


SKIP_REASONS = ["Not a good time", "Wrong campaign", "Bad data", "Duplicate", "Other"]
SKIP_OTHER = "Other"  # the skip reason that takes a few words of the agent's own
SKIP_OTHER_MAX = 80


class Agent(models.Model):
    """A person on the desk. Role comes from the user's groups (agents / supervisors)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="agent")
    presence = models.CharField(max_length=16, choices=Presence.choices, default=Presence.OFFLINE)
    presence_reason = models.CharField(max_length=80, blank=True)
    presence_changed_at = models.DateTimeField(null=True, blank=True)
    # The campaign the desk works: kept here, not in a browser session, so every process that
    # renders the desk (a socket's consumer, a command's answer) shows the same campaign.
    desk_campaign = models.ForeignKey(
        "campaigns.Campaign", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Who each platform knows the agent as: ``calls.models.PlatformIdentity`` (``identities``),
    # one row per platform, read by the platform's adapter (DESIGN.md "Core model").

    class Meta:
        ordering = ["user__username"]

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def username(self) -> str:
        return self.user.get_username()


class PresenceSpan(models.Model):
    """One stretch of an agent's presence: written with every change of ``Agent.presence`` (by
    ``calls.services.presence.presence_write``, the one writer), so the desk can sum an agent's
    day by state. The open span (``ended_at`` empty) is the current one."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="presence_spans")
    presence = models.CharField(max_length=16, choices=Presence.choices)
    reason = models.CharField(max_length=80, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["started_at", "id"]
        indexes = [models.Index(fields=["agent", "started_at"], name="presence_span_day_idx")]

    def __str__(self) -> str:
        return f"{self.agent} {self.presence} from {self.started_at:%H:%M}"


class AuditEntry(models.Model):
    """One supervisor intervention: who, when, what, on which agent or campaign. Written by the
    services that act (through :func:`audit_record`), never by views, so every way in is recorded.
    The names are copied too: an entry keeps saying who did what after a user or campaign goes."""

    class Action(models.TextChoices):
        RELEASE_LEADS = "release_leads", "Released leads"
        NOT_READY = "not_ready", "Set Not ready"
        SIGN_OUT = "sign_out", "Signed out"
        CAMPAIGN_PAUSE = "campaign_pause", "Paused campaign"
        CAMPAIGN_RESUME = "campaign_resume", "Resumed campaign"
        TOKEN_ROTATE = "token_rotate", "Rotated intake token"

    at = models.DateTimeField(default=timezone.now)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    by_name = models.CharField(max_length=150)
    action = models.CharField(max_length=32, choices=Action.choices)
    # Indexed by the (target, newest first) indexes below, not alone.
    agent = models.ForeignKey(
        Agent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(
        "campaigns.Campaign",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
    )
    # What happened, in plain words, as the audit page shows it ("alice: Not ready, Coaching").
    summary = models.CharField(max_length=200)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["-at", "-id"], name="audit_newest_idx"),
            models.Index(fields=["agent", "-at"], name="audit_agent_idx"),
            models.Index(fields=["campaign", "-at"], name="audit_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.by_name}: {self.summary}"


def person_name(user) -> str:
    """How a supervisor is named to an agent and on the audit page."""
    return user.get_full_name() or user.get_username()


def audit_record(
    *, by, action: str, summary: str, agent: Agent | None = None, campaign=None, **details: Any
) -> AuditEntry:
    """Record an intervention (in the caller's transaction: undone with it). ``details`` must be
    JSON-friendly; never put a secret in it (a rotated token is recorded as rotated, no more)."""
    return AuditEntry.objects.create(
        by=by,
        by_name=person_name(by),
        action=action,
        agent=agent,
        campaign=campaign,
        summary=summary[:200],
        details=details,
    )

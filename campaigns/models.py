"""Campaigns, leads, dispositions, do-not-call numbers and sheet uploads."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterable
from datetime import time

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from calls.providers import per_platform


def _intake_token() -> str:
    return secrets.token_urlsafe(32)


class AgentMapping(models.TextChoices):
    """How leads are assigned: Ryng's Append Campaign ``agentMapping`` values."""

    ALL_AGENTS = "all-agents", "All agents"
    GLOBAL = "global", "A list of agents"
    INLINE = "inline", "Per lead, from the sheet"


class Campaign(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"

    name = models.CharField(max_length=120)
    account = models.ForeignKey("calls.TelephonyAccount", on_delete=models.PROTECT, related_name="campaigns")
    platform_campaign_id = models.CharField(
        max_length=120,
        blank=True,
        help_text=f"The campaign on the platform: {per_platform('campaign_ref_hint')}.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    agent_mapping = models.CharField(
        max_length=12, choices=AgentMapping.choices, default=AgentMapping.ALL_AGENTS
    )
    agents = models.ManyToManyField("agentdesk.Agent", blank=True, related_name="campaigns")
    custom_field_names = models.JSONField(
        default=list, blank=True, help_text="Names of custom fields, in order."
    )
    default_region = models.CharField(
        max_length=2, default="US", help_text="ISO country for national numbers."
    )
    # The calling window, in each lead's local time.
    window_start = models.TimeField(default=time(9, 0))
    window_end = models.TimeField(default=time(21, 0))
    window_days = models.CharField(max_length=7, default="0123456", help_text="Weekdays allowed, 0 = Monday.")
    attempt_cap = models.PositiveSmallIntegerField(default=3)
    retry_delay_minutes = models.PositiveIntegerField(default=60)
    wrap_up_limit_seconds = models.PositiveIntegerField(
        "wrap-up limit (seconds)",
        null=True,
        blank=True,
        help_text="How long an agent should take to dispose a call after it ends. Empty: no limit. "
        "The desk counts against it and says when it is over; it never disposes by itself.",
    )
    # The Not-ready reasons its agents pick from, as the supervisor lists them; empty: the
    # standard list (agentdesk.models.not_ready_reasons). Nullable with no default, like
    # target_contact_rate below (SQLite adds the column in place).
    not_ready_reasons = models.JSONField(
        null=True,
        blank=True,
        help_text="The Not-ready reasons its agents pick from (empty: the standard list).",
    )
    intake_token = models.CharField(max_length=64, unique=True, default=_intake_token, editable=False)
    # Service level the supervisor aims at, shown met or missed on the wallboard. Nullable with no
    # default: SQLite then adds the column in place instead of rebuilding campaigns_campaign,
    # which would drop its campaign_has_leads trigger (migration 0005).
    target_contact_rate = models.PositiveSmallIntegerField(
        "target contact rate (%)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Connected calls out of calls placed, today. Empty: no target.",
    )
    # The answer-time service level (calls.figures.service_level): this share of today's
    # connected calls answered within this many seconds of the dial. Nullable with no default,
    # like target_contact_rate. Both or neither (the form).
    service_level_seconds = models.PositiveSmallIntegerField(
        "answered within (seconds)",
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(3600)],
        help_text="Of connected calls, from the dial to the customer's answer. Empty: no target.",
    )
    target_service_level = models.PositiveSmallIntegerField(
        "target service level (%)",
        null=True,
        blank=True,
        validators=[MaxValueValidator(100)],
        help_text="Connected calls answered within that time, today.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # -- pushing leads to the platform (Ryng Append Campaign); see docs/campaigns.md "Ryng sync" --
    push_format = models.CharField(
        max_length=4,
        choices=[("json", "JSON body"), ("csv", "CSV sheet (form-data)")],
        default="json",
        help_text="How leads are pushed to a platform that takes pushed leads (Append Campaign).",
    )
    sync_status = models.CharField(max_length=10, blank=True, help_text="running, done or failed.")
    sync_message = models.CharField(max_length=300, blank=True)
    sync_total = models.PositiveIntegerField(default=0)
    sync_pushed = models.PositiveIntegerField(default=0)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def platform(self) -> str:
        return self.account.platform


class Disposition(models.Model):
    class Outcome(models.TextChoices):
        FINAL = "final", "Final"
        RETRY = "retry", "Retry after a delay"
        CALLBACK = "callback", "Callback"
        DNC = "dnc", "Do not call"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="dispositions")
    name = models.CharField(max_length=80)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.FINAL)
    retry_delay_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Overrides the campaign's."
    )
    position = models.PositiveSmallIntegerField(default=0)
    # A call disposed with it counts as a conversion (a sale, an appointment) on the wallboard.
    is_conversion = models.BooleanField("counts as a conversion", default=False)
    # The digit that picks it on the desk; empty: the first digit no other disposition claims
    # (desk_keys).
    key = models.CharField("desk key", max_length=1, blank=True, default="")

    class Meta:
        ordering = ["position", "id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "name"], name="disposition_unique_name")]

    def __str__(self) -> str:
        return self.name


# The keys the desk picks a disposition with, in the order they are handed out.
DESK_KEYS = "1234567890"


def desk_keys(keys: Iterable[str]) -> list[str]:
    """The desk key of each disposition, in order, from the keys set on them: its own, else the
    first of DESK_KEYS nobody claims, else none (past ten)."""
    keys = list(keys)
    free = (key for key in DESK_KEYS if key not in keys)
    return [key or next(free, "") for key in keys]


class Lead(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be called"
        IN_PROGRESS = "in_progress", "Call in progress"
        CALLBACK = "callback", "Callback booked"
        DONE = "done", "Done"
        DNC = "dnc", "Do not call"
        EXHAUSTED = "exhausted", "Attempts used up"

    class Source(models.TextChoices):
        SHEET = "sheet", "Sheet upload"
        INTAKE = "intake", "Intake API"
        PLATFORM = "platform", "Platform offer"
        SEED = "seed", "Demo seed"

    # No single-column indexes on campaign and lease_owner: lead_queue_idx (campaign, ...) and
    # lead_lease_idx (lease_owner, ...) lead with those columns and serve every lookup the
    # single-column ones would, at one B-tree less to maintain per inserted lead (BENCHMARKS.md).
    # db_constraint=False: the database keeps this reference with triggers instead of a FOREIGN
    # KEY (migration 0005, docs/import.md "The campaign reference"). A foreign key checks each
    # inserted lead on its own at COMMIT, about 5 s of a million-row import; the triggers check
    # each INSERT statement once (its new rows' campaigns exist, and are locked FOR KEY SHARE as
    # the foreign key would), a moved lead, and refuse to delete a campaign that still has leads.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="leads", db_index=False, db_constraint=False
    )
    number = models.CharField(max_length=20, help_text="E.164")
    raw_number = models.CharField(max_length=64, blank=True, help_text="As uploaded.")
    name = models.CharField(max_length=200, blank=True)
    custom_fields = models.JSONField(default=dict, blank=True)
    # ",agent1,agent2," (empty: any agent) so one indexed LIKE works on SQLite and PostgreSQL alike.
    assigned_agents = models.CharField(max_length=1000, blank=True, default="")
    timezone = models.CharField(max_length=64, blank=True, help_text="IANA zone with the strictest window.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.SHEET)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.ForeignKey(
        "agentdesk.Agent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="leased_leads",
        db_index=False,
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    last_disposition = models.CharField(max_length=80, blank=True)
    last_notes = models.TextField(blank=True)
    last_called_at = models.DateTimeField(null=True, blank=True)
    # A platform-born lead's offer: Huawei {controlid, dialeddigits, callData}; GWS {record...}.
    offer = models.JSONField(default=dict, blank=True)
    # Which sheet brought the lead, for the record. db_constraint=False: the only writer of this
    # column is the importer, which holds the upload row locked while it inserts; a database FK
    # would cost a deferred RI check per inserted lead at COMMIT. No index and DO_NOTHING: nothing
    # looks leads up by upload, and an upload is only ever deleted with its campaign, which
    # deletes its leads too; an index here cost about 2 s of a million-row import (migration 0006).
    upload = models.ForeignKey(
        "SheetUpload",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        related_name="leads",
        db_constraint=False,
        db_index=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # When the lead was pushed to the platform's campaign (Ryng Append Campaign); empty = not yet.
    pushed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # One lead per number per campaign from sheets and intake; platform offers may repeat.
            models.UniqueConstraint(
                fields=["campaign", "number"],
                condition=~Q(source="platform"),
                name="lead_unique_number_per_campaign",
            )
        ]
        indexes = [
            models.Index(fields=["campaign", "status", "next_attempt_at"], name="lead_queue_idx"),
            # Partial: every lookup by lease names an owner (or asks for one), and a lead fresh
            # from a sheet has none, so a million-row import adds nothing to it (migration 0006).
            models.Index(
                fields=["lease_owner", "lease_expires_at"],
                condition=Q(lease_owner__isnull=False),
                name="lead_lease_idx",
            ),
            # The desk offers the lowest id among ready leads: a walk in id order over the
            # leads that may be called now, not over every lead a worked campaign has finished
            # or is waiting to call again. A waiting lead (next_attempt_at set) joins it when its
            # time passes (agentdesk.services._promote_due; docs/desk.md, "The queue";
            # bench/queue_bench.py). Platform-born leads are leased by the engine, never here.
            # By zone (then id): the desk takes the zones whose calling window is open now,
            # each one walk from its start (agentdesk.services._open_zone_queues).
            models.Index(
                fields=["campaign", "timezone", "id"],
                condition=Q(status__in=["pending", "callback"], next_attempt_at__isnull=True)
                & ~Q(source="platform"),
                name="lead_ready_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or 'Lead'} {self.number}"


class LeadCount(models.Model):
    """How many of a campaign's leads are in each status, kept by the database itself.

    Triggers on ``campaigns_lead`` (migration 0017) add each INSERT, UPDATE and DELETE
    statement's net change per (campaign, status) here, in the statement's own transaction, so
    the count is exact at every commit; a partition attached whole by the importer is counted
    when it is attached (``campaigns.partitions``). Pages read these few rows instead of
    counting millions of leads (``campaigns.selectors.lead_counts``; docs/supervisor.md)."""

    # No foreign key: the counter of a deleted campaign goes with it (a trigger), and a lead's
    # own reference to its campaign is kept by triggers too (migration 0005).
    campaign = models.ForeignKey(
        Campaign, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+", db_index=False
    )
    status = models.CharField(max_length=12, choices=Lead.Status.choices)
    n = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "status"], name="lead_count_unique")]

    def __str__(self) -> str:
        return f"{self.campaign_id} {self.status}: {self.n}"


class DoNotCall(models.Model):
    number = models.CharField(max_length=20, unique=True, help_text="E.164")
    reason = models.CharField(max_length=200, blank=True)
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["number"]
        verbose_name = "do-not-call number"

    def __str__(self) -> str:
        return self.number


class SheetUpload(models.Model):
    class Status(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        VALIDATING = "validating", "Dry run in progress"
        VALIDATED = "validated", "Dry run done"
        IMPORTING = "importing", "Importing"
        DONE = "done", "Imported"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        UNDOING = "undoing", "Undoing the import"
        UNDONE = "undone", "Import undone"

    class Mode(models.TextChoices):
        """What the import does with a row whose number is already a lead of the campaign
        (``mapping["mode"]``, chosen on the mapping page)."""

        ADD = "add", "Add new leads only"
        UPDATE = "update", "Add new and update existing"

    DELIMITER_NAMES = {"\t": "Tab", ",": "Comma", ";": "Semicolon", "|": "Pipe"}

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="uploads")
    file = models.FileField(upload_to="sheets/%Y/%m/")
    original_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    encoding = models.CharField(max_length=20, blank=True)
    delimiter = models.CharField(max_length=2, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    invalid_rows = models.PositiveIntegerField(default=0)
    duplicate_rows = models.PositiveIntegerField(default=0)
    dnc_rows = models.PositiveIntegerField(default=0)
    imported_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    size_bytes = models.BigIntegerField(default=0)
    # Dry run or import progress through the file, 0..1 (rows are unknown until the first pass ends).
    progress = models.FloatField(default=0.0)
    # What a pass is doing when the bar alone says too little ("Writing 195,715 leads…").
    step = models.CharField(max_length=120, blank=True, default="")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.original_name

    @property
    def delimiter_name(self) -> str:
        """The delimiter in words: a tab printed as itself is blank on the page."""
        return self.DELIMITER_NAMES.get(self.delimiter, self.delimiter)

    @property
    def mode(self) -> str:
        return (self.mapping or {}).get("mode") or self.Mode.ADD

    @property
    def updates(self) -> bool:
        return self.mode == self.Mode.UPDATE


class ResumableUpload(models.Model):
    """A sheet arriving in pieces (the browser's resumable upload, ``campaigns.resumable``): the
    bytes so far are in ``MEDIA_ROOT/sheets/partial/<id>.part``; ``received`` is how many. Owned
    by the supervisor who started it: only they may add to it. Once whole it becomes a
    :class:`SheetUpload` through the same checks as a form upload (``upload``)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=255)
    size = models.BigIntegerField()
    received = models.BigIntegerField(default=0)
    upload = models.ForeignKey(
        SheetUpload, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.received}/{self.size})"

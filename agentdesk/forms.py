"""Forms for the desk's commands (the form logic; the services do the writes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from agentdesk.models import AGENTS_GROUP, Agent, AuditEntry
from agentdesk.selectors import lead_clock
from calls.models import Call
from campaigns import formfields
from campaigns.models import Campaign, Disposition, Lead
from campaigns.selectors import calling_window_status

NOTES_MAX = 4000


def parse_callback(value: str, lead: Lead) -> tuple[datetime | None, str]:
    """A ``datetime-local`` value read in the lead's local time. Refuses the past and times the
    lead's calling window does not allow (the browser's min/max are only a hint)."""
    value = (value or "").strip()
    if not value:
        return None, "Pick a callback time."
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        return None, "That callback time is not a date and time."
    clock = lead_clock(lead)
    at = naive.replace(tzinfo=ZoneInfo(clock.zone)) if naive.tzinfo is None else naive
    if at <= timezone.now():
        return None, "The callback time is in the past."
    allowed, reason = calling_window_status(lead, at)
    if not allowed:
        return (
            None,
            f"Outside the lead's calling window: {reason}" if reason else "Outside the calling window.",
        )
    return at, ""


class DisposeForm(forms.Form):
    """Save & next: a disposition of the call's campaign, notes, and a callback time in the lead's
    own time zone when the disposition books one. ``cleaned_data`` is what
    ``agentdesk.services.call_dispose_then_next`` takes."""

    disposition = formfields.ModelChoiceField(
        queryset=Disposition.objects.none(),
        error_messages={"required": "Pick a disposition.", "invalid_choice": "Pick a disposition."},
    )
    notes = forms.CharField(required=False, max_length=NOTES_MAX, strip=True)
    callback_at = forms.CharField(required=False)

    def __init__(self, data, *, call: Call):
        super().__init__(data)
        self.call = call
        self.fields["disposition"].queryset = call.campaign.dispositions.all()

    @staticmethod
    def call_id(data) -> int:
        try:
            return int(data.get("call"))
        except (TypeError, ValueError):
            return 0

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        disposition = cleaned.get("disposition")
        cleaned["callback_at"] = None
        if disposition is not None and disposition.outcome == Disposition.Outcome.CALLBACK:
            at, problem = parse_callback(self.data.get("callback_at", ""), self.call.lead)
            if problem:
                self.add_error("callback_at", problem)
            cleaned["callback_at"] = at
        return cleaned

    def first_errors(self) -> dict[str, str]:
        """One message a field, as the desk shows them."""
        return {name: errors[0] for name, errors in self.errors.items()}


class AuditFilterForm(forms.Form):
    """The audit page's filters (GET). A value that is not a choice is an error, and the page
    lists everything rather than guess."""

    agent = forms.ModelChoiceField(
        queryset=Agent.objects.filter(user__groups__name=AGENTS_GROUP).select_related("user"),
        required=False,
        empty_label="Every agent",
    )
    campaign = forms.ModelChoiceField(
        queryset=Campaign.objects.order_by("name"), required=False, empty_label="Every campaign"
    )
    action = forms.ChoiceField(choices=[("", "Every action"), *AuditEntry.Action.choices], required=False)

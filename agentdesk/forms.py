"""Forms for the desk's commands (the form logic; the services do the writes)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from django import forms
from django.utils import timezone

from agentdesk import reports
from agentdesk.models import AGENTS_GROUP, Agent, AuditEntry
from agentdesk.selectors import lead_clock
from calls.models import Call
from campaigns import formfields
from campaigns.models import Campaign, Disposition, Lead
from campaigns.selectors import calling_window_status, zone_named

NOTES_MAX = 4000
# Every IANA time zone a supervisor may read a report in.
ZONES = sorted(available_timezones())


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


# -- reports ------------------------------------------------------------------------------------------

REPORT_DATE_ERRORS = {"invalid": "Write the date as YYYY-MM-DD, for example 2026-12-01."}
# The years a report may name: far enough either way, and clear of the calendar's ends (a
# midnight in year 1 or 9999 does not convert to UTC everywhere).
REPORT_YEARS = (2000, 2200)


class ReportForm(forms.Form):
    """The reports page's choices (GET): a date range in a time zone, and how to group. Missing
    values take the defaults (:func:`report_query`); a wrong one is an error said in words."""

    date_from = forms.DateField(
        label="From", error_messages=REPORT_DATE_ERRORS, widget=forms.DateInput({"type": "date"})
    )
    date_to = forms.DateField(
        label="To", error_messages=REPORT_DATE_ERRORS, widget=forms.DateInput({"type": "date"})
    )
    group = forms.ChoiceField(label="By", choices=reports.GROUPS)
    tz = forms.ChoiceField(label="Time zone", choices=[(z, z) for z in ZONES])

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        for name, value in (("date_from", start), ("date_to", end)):
            if value and not REPORT_YEARS[0] <= value.year <= REPORT_YEARS[1]:
                self.add_error(name, f"Pick a date between {REPORT_YEARS[0]} and {REPORT_YEARS[1]}.")
        if start and end and end < start:
            self.add_error("date_to", "The range ends before it starts.")
        elif start and end and (end - start).days + 1 > reports.MAX_DAYS:
            self.add_error("date_to", f"A report covers at most {reports.MAX_DAYS} days.")
        return data

    def build(self) -> reports.Report:
        data = self.cleaned_data
        return reports.build(
            group=data["group"],
            date_from=data["date_from"],
            date_to=data["date_to"],
            zone=ZoneInfo(data["tz"]),
        )

    def problems(self) -> str:
        """Every error in one line, for a CSV link that cannot show a form."""
        return "; ".join(
            f"{self.fields[name].label if name in self.fields else 'range'}: {' '.join(errors)}"
            for name, errors in self.errors.items()
        )


def report_query(query, default_zone: str) -> dict[str, str]:
    """The GET parameters with the defaults filled in: the zone last used (``default_zone``),
    grouped by day, the last seven days up to today in that zone."""
    data = {name: query.get(name, "").strip() for name in ("date_from", "date_to", "group", "tz")}
    data["tz"] = data["tz"] or default_zone
    data["group"] = data["group"] or reports.DAY
    zone = zone_named(data["tz"]) or ZoneInfo("UTC")
    today = timezone.now().astimezone(zone).date()
    if not data["date_to"]:
        data["date_to"] = today.isoformat()
    if not data["date_from"]:
        try:
            start = date.fromisoformat(data["date_to"]) - timedelta(days=reports.DEFAULT_DAYS - 1)
        except (ValueError, OverflowError):  # the form says what is wrong with date_to
            start = today - timedelta(days=reports.DEFAULT_DAYS - 1)
        data["date_from"] = start.isoformat()
    return data

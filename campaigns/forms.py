"""Supervisor forms: the campaign editor, the sheet upload and the do-not-call list."""

from __future__ import annotations

from django import forms

from agentdesk.models import (
    AGENTS_GROUP,
    NOT_READY_REASON_MAX,
    NOT_READY_REASONS,
    NOT_READY_REASONS_MAX,
    Agent,
)
from calls.models import TelephonyAccount
from campaigns import formfields, services
from campaigns.models import DESK_KEYS, AgentMapping, Campaign, Disposition, Lead, desk_keys
from campaigns.selectors import ExportFilter

WEEKDAYS = [("0", "Mon"), ("1", "Tue"), ("2", "Wed"), ("3", "Thu"), ("4", "Fri"), ("5", "Sat"), ("6", "Sun")]


# 24-hour clock, as the desk shows times (a browser's <input type="time"> follows its locale's
# 12-hour clock in the US).
HHMM = {"pattern": "([01][0-9]|2[0-3]):[0-5][0-9]", "placeholder": "HH:MM", "inputmode": "numeric", "size": 5}


# -- dispositions as rows: a formset, so the form works without JavaScript (extra empty rows, an
# order number, a Remove box); static/js/supervisor.js adds rows, moves them and removes them.

RETRY_MINUTES_MAX = 7 * 24 * 60
KEY_ERROR = "The key is one digit, 0 to 9."


class DispositionRowForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(
        max_length=80,
        error_messages={"required": "A disposition needs a name (or remove the row)."},
        widget=forms.TextInput(attrs={"aria-label": "Name", "size": 18}),
    )
    outcome = forms.ChoiceField(
        choices=Disposition.Outcome.choices,
        initial=Disposition.Outcome.FINAL,
        error_messages={"invalid_choice": "Pick an outcome from the list (%(value)s is not one)."},
        widget=forms.Select(attrs={"aria-label": "Outcome"}),
    )
    retry_delay_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=RETRY_MINUTES_MAX,
        error_messages={
            "invalid": "Retry minutes: a whole number.",
            "min_value": "Retry minutes: at least 1.",
            "max_value": f"Retry minutes: at most {RETRY_MINUTES_MAX} (a week).",
        },
        widget=forms.NumberInput(attrs={"aria-label": "Retry minutes", "placeholder": "campaign's"}),
    )
    key = forms.CharField(
        required=False,
        max_length=1,
        error_messages={"max_length": KEY_ERROR},
        widget=forms.TextInput(attrs={"aria-label": "Key", "size": 2, "inputmode": "numeric"}),
    )
    is_conversion = forms.BooleanField(
        required=False, label="Conversion", widget=forms.CheckboxInput(attrs={"aria-label": "Conversion"})
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if any(ord(c) < 32 or c == "\x7f" for c in name):
            raise forms.ValidationError("A name is plain text on one line.")
        return name

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if key and key not in DESK_KEYS:
            raise forms.ValidationError(KEY_ERROR)
        return key

    def has_changed(self) -> bool:
        # An extra row the page only numbered is still empty.
        return bool(set(self.changed_data) - {"ORDER"})

    def spec(self) -> services.DispositionSpec:
        data = self.cleaned_data
        return services.DispositionSpec(
            pk=data["id"],
            name=data["name"],
            outcome=data["outcome"],
            retry_delay_minutes=data["retry_delay_minutes"],
            is_conversion=data["is_conversion"],
            key=data["key"],
        )


class BaseDispositionRows(forms.BaseFormSet):
    default_error_messages = {
        **forms.BaseFormSet.default_error_messages,
        "too_many_forms": "At most %(num)d dispositions.",
    }

    def add_fields(self, form, index):
        super().add_fields(form, index)
        form.fields["ORDER"].widget.attrs.update({"aria-label": "Place", "class": "disp-place"})
        form.fields["DELETE"].label = "Remove"

    def _place(self, index: int) -> tuple[int, int]:
        try:
            return int(self.forms[index]["ORDER"].value()), index
        except (TypeError, ValueError):
            return 10**9, index  # no number: after the numbered rows, as ordered_forms does

    def rows(self) -> list[forms.Form]:
        """Every row in its place (the supervisor's order, also when the form comes back with
        errors), each with ``place`` (1, 2 ...) and the key the desk would give it as the key
        field's placeholder."""
        forms_ = [self.forms[i] for i in sorted(range(len(self.forms)), key=self._place)]
        kept = [f for f in forms_ if not self._gone(f)]
        keys = desk_keys(str(f["key"].value() or "") for f in kept)
        for place, (form, key) in enumerate(zip(kept, keys, strict=True), start=1):
            form.place = place
            form.fields["key"].widget.attrs["placeholder"] = key
        return forms_

    def _gone(self, form) -> bool:
        """Removed, or an extra row left empty."""
        if form in self.forms[self.initial_form_count() :] and not (self.is_bound and form.has_changed()):
            return True
        return self.is_bound and self._should_delete_form(form)

    def clean(self):
        names: dict[str, int] = {}
        keys: dict[str, int] = {}
        for form in self.rows():
            if self._gone(form):
                continue
            data = form.cleaned_data
            name, key = data.get("name"), data.get("key")
            if name and names.setdefault(name.casefold(), form.place) != form.place:
                form.add_error("name", f"Row {names[name.casefold()]} is already called “{name}”.")
            if key and keys.setdefault(key, form.place) != form.place:
                form.add_error("key", f"Key {key} already picks row {keys[key]}.")

    def specs(self) -> list[services.DispositionSpec]:
        return [form.spec() for form in self.ordered_forms]


DispositionRows = forms.formset_factory(
    DispositionRowForm,
    formset=BaseDispositionRows,
    extra=2,
    can_order=True,
    can_delete=True,
    max_num=40,
    validate_max=True,
    absolute_max=60,
)


class CampaignForm(forms.ModelForm):
    account = formfields.ModelChoiceField(queryset=TelephonyAccount.objects.filter(is_active=True))
    # Agents only: a supervisor is not offered as someone who takes calls.
    agents = formfields.ModelMultipleChoiceField(
        queryset=Agent.objects.select_related("user").filter(user__groups__name=AGENTS_GROUP),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    custom_fields_text = forms.CharField(
        label="Custom field names",
        required=False,
        help_text="One per line, in order (the platform's custom field 1, 2 ...).",
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    days = forms.MultipleChoiceField(
        label="Calling days", choices=WEEKDAYS, widget=forms.CheckboxSelectMultiple, required=True
    )
    not_ready_text = forms.CharField(
        label="Not-ready reasons",
        required=False,
        help_text=f"What its agents pick from when they step away: one per line, up to "
        f"{NOT_READY_REASONS_MAX} of {NOT_READY_REASON_MAX} characters. Empty: {', '.join(NOT_READY_REASONS)}.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "account",
            "platform_campaign_id",
            "agent_mapping",
            "push_format",
            "default_region",
            "window_start",
            "window_end",
            "attempt_cap",
            "retry_delay_minutes",
            "wrap_up_limit_seconds",
            "target_contact_rate",
            "service_level_seconds",
            "target_service_level",
        ]
        widgets = {
            "window_start": forms.TimeInput(attrs=HHMM, format="%H:%M"),
            "window_end": forms.TimeInput(attrs=HHMM, format="%H:%M"),
            "agent_mapping": forms.RadioSelect,
        }
        help_texts = {
            "agent_mapping": "All agents: any agent may take any lead. A list of agents: only the agents "
            "ticked below. Per lead: the sheet's or the intake's agents column says who.",
        }

    # The layout: what the campaign is and who works it | when and how it is called.
    LEFT = [
        "name",
        "account",
        "platform_campaign_id",
        "agent_mapping",
        "agents",
        "push_format",
        "default_region",
    ]

    def left_fields(self):
        return [self[name] for name in self.LEFT]

    def right_fields(self):
        return [field for field in self if field.name not in self.LEFT]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["account"].queryset = TelephonyAccount.objects.filter(is_active=True)
        # The browser's own bounds, as the model's validators have them (the form checks again).
        self.fields["service_level_seconds"].widget.attrs.update(min=1, max=3600)
        self.fields["target_service_level"].widget.attrs.update(max=100)
        campaign = self.instance
        # A new campaign's mapping is the supervisor's choice, not a default they may not notice.
        self.fields["agent_mapping"].choices = AgentMapping.choices
        if not campaign.pk:
            self.initial["agent_mapping"] = None
        if campaign.pk:
            self.initial.setdefault("agents", list(campaign.agents.all()))
        self.initial.setdefault("custom_fields_text", "\n".join(campaign.custom_field_names or []))
        self.initial.setdefault("days", list(campaign.window_days or "0123456"))
        self.initial.setdefault("not_ready_text", "\n".join(campaign.not_ready_reasons or []))
        self.dispositions = DispositionRows(
            self.data if self.is_bound else None,
            prefix="disp",
            initial=[
                {
                    "id": d.pk,
                    "name": d.name,
                    "outcome": d.outcome,
                    "retry_delay_minutes": d.retry_delay_minutes,
                    "key": d.key,
                    "is_conversion": d.is_conversion,
                }
                for d in (campaign.dispositions.all() if campaign.pk else [])
            ],
        )

    def clean_custom_fields_text(self) -> list[str]:
        names = [
            line.strip() for line in self.cleaned_data["custom_fields_text"].splitlines() if line.strip()
        ]
        if len(set(names)) != len(names):
            raise forms.ValidationError("Custom field names must be unique.")
        return names

    def clean_not_ready_text(self) -> list[str] | None:
        reasons = list(
            dict.fromkeys(line.strip() for line in self.cleaned_data["not_ready_text"].splitlines())
        )
        reasons = [reason for reason in reasons if reason]
        long = [reason for reason in reasons if len(reason) > NOT_READY_REASON_MAX]
        if long:
            raise forms.ValidationError(
                f"A reason is at most {NOT_READY_REASON_MAX} characters: shorten “{long[0][:NOT_READY_REASON_MAX]}…”."
            )
        if len(reasons) > NOT_READY_REASONS_MAX:
            raise forms.ValidationError(f"At most {NOT_READY_REASONS_MAX} reasons ({len(reasons)} given).")
        return reasons or None

    def clean_default_region(self) -> str:
        import phonenumbers

        region = self.cleaned_data["default_region"].upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise forms.ValidationError("Use a two-letter country code such as US, GB or IN.")
        return region

    def clean(self):
        data = super().clean()
        if not self.dispositions.is_valid():
            self.add_error(None, "A disposition row needs a look (below); nothing was saved.")
        if data.get("agent_mapping") == AgentMapping.GLOBAL and not data.get("agents"):
            self.add_error("agents", "A list-of-agents mapping needs at least one agent.")
        within, target = data.get("service_level_seconds"), data.get("target_service_level")
        if (within is None) != (target is None):
            missing = "target_service_level" if target is None else "service_level_seconds"
            self.add_error(missing, "A service level needs both: the seconds and the target percentage.")
        if data.get("agent_mapping") == AgentMapping.ALL_AGENTS and data.get("agents"):
            self.add_error(
                "agent_mapping", "All agents takes no list: choose “A list of agents”, or untick the agents."
            )
        return data

    def save_campaign(self) -> Campaign:
        campaign = self.instance
        for name in self.Meta.fields:
            setattr(campaign, name, self.cleaned_data[name])
        campaign.custom_field_names = self.cleaned_data["custom_fields_text"]
        campaign.window_days = "".join(sorted(self.cleaned_data["days"]))
        campaign.not_ready_reasons = self.cleaned_data["not_ready_text"]
        return services.campaign_save(
            campaign=campaign,
            agents=self.cleaned_data["agents"],
            dispositions=self.dispositions.specs(),
        )


class UploadForm(forms.Form):
    # An empty file is the service's to refuse, in its words ("This file is empty.").
    sheet = forms.FileField(
        allow_empty_file=True,
        help_text=(
            "An Excel or LibreOffice workbook (.xlsx, .xls, .ods: its first sheet with data), or a CSV "
            "or text export: UTF-8, UTF-16 or Windows-1252; , ; tab or |."
        ),
    )


class DncAddForm(forms.Form):
    number = forms.CharField(max_length=64)
    reason = forms.CharField(max_length=200, required=False)


class DncUploadForm(forms.Form):
    sheet = forms.FileField(label="Numbers (CSV)", allow_empty_file=True)  # the service says "empty"
    reason = forms.CharField(max_length=200, required=False)


class ExportFilterForm(forms.Form):
    """The results export's filters, from the download link's GET parameters (all optional)."""

    date_from = forms.DateField(
        label="Last called from", required=False, widget=forms.DateInput({"type": "date"})
    )
    date_to = forms.DateField(label="to", required=False, widget=forms.DateInput({"type": "date"}))
    disposition = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *Lead.Status.choices])
    agent = forms.ModelChoiceField(
        queryset=Agent.objects.select_related("user").filter(user__groups__name=AGENTS_GROUP),
        required=False,
        empty_label="Any agent",
    )

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        names = list(campaign.dispositions.values_list("name", flat=True))
        self.fields["disposition"].choices = [("", "Any disposition"), *((n, n) for n in names)]

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and end < start:
            self.add_error("date_to", "The range ends before it starts.")
        return data

    def export_filter(self) -> ExportFilter:
        data = self.cleaned_data
        agent = data.get("agent")
        return ExportFilter(
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            disposition=data.get("disposition") or "",
            status=data.get("status") or "",
            agent_id=agent.pk if agent else None,
        )

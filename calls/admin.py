"""Admin for telephony accounts (credentials write-only), agents' platform identities, and
read-only calls and events. What each platform expects is read from its adapter."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin

from calls.models import Call, CallEvent, DialAttempt, PlatformIdentity, PlatformSession, TelephonyAccount
from calls.providers import per_platform, provider_class, provider_classes
from calls.providers.base import IDENTITY_FIELDS


class TelephonyAccountForm(forms.ModelForm):
    """Credentials are write-only: the field is always empty on the page; leaving it empty keeps
    the stored (encrypted) value, so a secret never travels back to a browser."""

    new_credentials = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        label="Set credentials",
        help_text=f"JSON, replaces the stored value. {per_platform('credentials_hint')}. "
        "Leave empty to keep what is stored.",
    )

    class Meta:
        model = TelephonyAccount
        fields = ["name", "platform", "base_url", "options", "is_active"]

    def clean_new_credentials(self) -> dict | None:
        raw = self.cleaned_data.get("new_credentials", "").strip()
        if not raw:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise forms.ValidationError("Credentials must be a JSON object.") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("Credentials must be a JSON object.")
        return value

    def save(self, commit: bool = True) -> TelephonyAccount:
        account = super().save(commit=False)
        if self.cleaned_data.get("new_credentials") is not None:
            account.credentials = self.cleaned_data["new_credentials"]
        if commit:
            account.save()
        return account


@admin.register(TelephonyAccount)
class TelephonyAccountAdmin(admin.ModelAdmin):
    form = TelephonyAccountForm
    list_display = ["name", "platform", "base_url", "is_active", "has_credentials"]
    list_filter = ["platform", "is_active"]
    readonly_fields = ["callback_urls"]

    @admin.display(boolean=True, description="Credentials set")
    def has_credentials(self, obj: TelephonyAccount) -> bool:
        return bool(obj.credentials_encrypted)

    @admin.display(description="Callback URLs (contain the secret)")
    def callback_urls(self, obj: TelephonyAccount) -> str:
        urls = obj.callback_urls() if obj.pk else {}
        return "  ".join(urls.values()) or "-"


def _identity_help(field: str) -> str:
    """What ``field`` of a platform identity means on each platform that uses it."""
    meanings = [
        f"{cls.label}: {cls.identity_fields[field]}"
        for cls in provider_classes()
        if field in cls.identity_fields
    ]
    return "; ".join(meanings) or "Not used by any platform."


class PlatformIdentityForm(forms.ModelForm):
    """One agent on one platform. Each field says what it means per platform (the adapter's
    ``identity_fields``); a field the chosen platform does not use must stay empty."""

    class Meta:
        model = PlatformIdentity
        fields = ["agent", "platform", *IDENTITY_FIELDS]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name in IDENTITY_FIELDS:
            self.fields[name].help_text = _identity_help(name)

    def clean(self) -> dict:
        cleaned = super().clean()
        platform = cleaned.get("platform")
        if not platform:
            return cleaned
        used = provider_class(platform).identity_fields
        for name in IDENTITY_FIELDS:
            if cleaned.get(name) and name not in used:
                self.add_error(name, f"Not used on this platform (it uses: {', '.join(used.values())}).")
        return cleaned


@admin.register(PlatformIdentity)
class PlatformIdentityAdmin(admin.ModelAdmin):
    form = PlatformIdentityForm
    list_display = ["agent", "platform", *IDENTITY_FIELDS]
    list_filter = ["platform"]
    search_fields = ["agent__user__username", *IDENTITY_FIELDS]
    list_select_related = ["agent__user"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Calls and events are written by the engine only (services are the only writers)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class CallEventInline(admin.TabularInline):
    model = CallEvent
    fields = ["received_at", "source", "kind", "state", "applied", "why", "key"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="why")
    def why(self, event: CallEvent) -> str:
        """The reconciler's decision and its reason (calls.services.reconcile)."""
        payload = event.payload if isinstance(event.payload, dict) else {}
        return f"{payload['action']}: {payload.get('reason', '')}" if "action" in payload else ""

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Call)
class CallAdmin(ReadOnlyAdmin):
    list_display = ["id", "agent", "campaign", "number", "state", "failure_reason", "created_at"]
    list_filter = ["state", "failure_reason", "account__platform"]
    search_fields = ["number", "platform_call_id"]
    list_select_related = ["agent__user", "campaign"]
    inlines = [CallEventInline]


@admin.register(CallEvent)
class CallEventAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "account", "source", "kind", "state", "applied", "key"]
    list_filter = ["source", "kind", "applied"]
    search_fields = ["key"]


@admin.register(DialAttempt)
class DialAttemptAdmin(ReadOnlyAdmin):
    list_display = ["key", "status", "tries", "error_code", "updated_at"]
    list_filter = ["status"]


@admin.register(PlatformSession)
class PlatformSessionAdmin(ReadOnlyAdmin):
    """Sessions hold GUIDs and cookies: only status and errors are shown."""

    list_display = ["agent", "account", "status", "last_error", "updated_at"]
    fields = ["agent", "account", "status", "last_error", "updated_at"]
    list_filter = ["status"]

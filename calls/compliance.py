"""Dial-time checks: campaign not paused, calling window, do-not-call, attempt cap.

Run twice: by :func:`calls.services.call_dial` when the agent clicks (so the agent reads why at
once) and again by the ``place_call`` task right before the platform is called (the click may be
minutes old, a DNC entry may have landed since). The result is stored in ``Call.compliance``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Exists, OuterRef
from django.utils import timezone

from campaigns.models import Campaign, DoNotCall, Lead
from campaigns.selectors import calling_window_status


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True)
class DialChecks:
    at: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def first_refusal(self) -> Check | None:
        return next((check for check in self.checks if not check.ok), None)

    def as_json(self) -> dict[str, Any]:
        return {"at": self.at, "ok": self.ok, "checks": [asdict(check) for check in self.checks]}


def dial_checks(lead: Lead, *, at: datetime | None = None) -> DialChecks:
    """All dial-time checks for ``lead`` at ``at`` (now by default). Never raises."""
    at = at or timezone.now()
    return DialChecks(
        at=at.isoformat(),
        checks=[_campaign_check(lead), _window_check(lead, at), _dnc_check(lead), _attempts_check(lead)],
    )


def _campaign_check(lead: Lead) -> Check:
    # A lead already on a desk when its campaign was paused (ours, or a platform's offer still
    # on its way back) is not dialed until the campaign is resumed.
    if lead.campaign.status == Campaign.Status.PAUSED:
        return Check("campaign", False, f"{lead.campaign.name} is paused: no calls until it is resumed.")
    return Check("campaign", True)


def _window_check(lead: Lead, at: datetime) -> Check:
    allowed, reason = calling_window_status(lead, at)
    return Check("window", allowed, reason)


def on_dnc_list():
    """Whether the lead's number is on the do-not-call list, as an annotation of a lead read
    (``Lead.objects.annotate(on_dnc_list=on_dnc_list())``): the desk's read of the lead on it
    answers the check below with no query of its own."""
    return Exists(DoNotCall.objects.filter(number=OuterRef("number")))


def _dnc_check(lead: Lead) -> Check:
    listed = getattr(lead, "on_dnc_list", None)  # read with the lead, else now
    if listed is None:
        listed = DoNotCall.objects.filter(number=lead.number).exists()
    if lead.status == Lead.Status.DNC or listed:
        return Check("dnc", False, "This number is on the do-not-call list.")
    return Check("dnc", True)


def _attempts_check(lead: Lead) -> Check:
    cap = lead.campaign.attempt_cap
    if cap and lead.attempts >= cap:
        return Check("attempts", False, f"All {cap} attempts for this lead are used.")
    return Check("attempts", True, f"{lead.attempts} of {cap}")

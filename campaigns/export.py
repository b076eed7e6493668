"""Results export: one CSV row per lead, streamed, safe to open in a spreadsheet (every cell,
the header row included, goes through ``campaigns.csvsafe``)."""

from __future__ import annotations

import json
from collections.abc import Iterator

from campaigns import csvsafe
from campaigns.models import Campaign
from campaigns.selectors import ExportFilter, export_leads

HEADER = [
    "lead_id",
    "number",
    "raw_number",
    "name",
    "status",
    "attempts",
    "last_disposition",
    "notes",
    "last_called_at",
    "talk_seconds",
    "recording_url",
    "agent",
    "timezone",
    "assigned_agents",
]


def rows(campaign: Campaign, only: ExportFilter | None = None) -> Iterator[str]:
    """The export, one CSV line at a time (for ``StreamingHttpResponse``): the fixed columns, then
    one column per campaign custom field, then ``other_fields`` (JSON) for keys the campaign does
    not name (intake rows can bring their own)."""
    names = list(campaign.custom_field_names or [])
    writer = csvsafe.writer(csvsafe.Echo())
    yield writer.writerow([*HEADER, *names, "other_fields"])
    for item in export_leads(campaign=campaign, only=only):
        custom = dict(item["custom_fields"] or {})
        other = {k: v for k, v in custom.items() if k not in names}
        yield writer.writerow(
            [
                item["id"],
                item["number"],
                item["raw_number"],
                item["name"],
                item["status"],
                item["attempts"],
                item["last_disposition"],
                item["notes"],
                item["last_called_at"].isoformat() if item["last_called_at"] else "",
                "" if item["talk_seconds"] is None else item["talk_seconds"],
                item["recording_url"],
                item["agent"],
                item["timezone"],
                item["assigned_agents"].strip(","),
                *(custom.get(n, "") for n in names),
                json.dumps(other, ensure_ascii=False) if other else "",
            ]
        )

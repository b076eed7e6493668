"""Results export: one CSV row per lead, streamed, safe to open in a spreadsheet.

Spreadsheets run a cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return as a
formula (OWASP "CSV injection"). Such cells get a leading apostrophe, which Excel, LibreOffice and
Google Sheets show as text. E.164 numbers (``+14155550100``) start with ``+`` but are not
formulas anyone could abuse, and supervisors re-import them, so they stay exactly as they are.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator

from campaigns.models import Campaign
from campaigns.selectors import export_leads

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[1-9]\d{1,14}")

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


def neutralize(value: object) -> str:
    """A cell as text, with a leading apostrophe when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START) and not _E164.fullmatch(text):
        return "'" + text
    return text


class _Echo:
    """csv.writer needs a file; this one hands each written line straight back."""

    def write(self, value: str) -> str:
        return value


def rows(campaign: Campaign) -> Iterator[str]:
    """The export, one CSV line at a time (for ``StreamingHttpResponse``): the fixed columns, then
    one column per campaign custom field, then ``other_fields`` (JSON) for keys the campaign does
    not name (intake rows can bring their own)."""
    names = list(campaign.custom_field_names or [])
    writer = csv.writer(_Echo())
    yield writer.writerow([*HEADER, *names, "other_fields"])
    for item in export_leads(campaign=campaign):
        custom = dict(item["custom_fields"] or {})
        other = {k: v for k, v in custom.items() if k not in names}
        yield writer.writerow(
            [
                neutralize(item["id"]),
                neutralize(item["number"]),
                neutralize(item["raw_number"]),
                neutralize(item["name"]),
                neutralize(item["status"]),
                neutralize(item["attempts"]),
                neutralize(item["last_disposition"]),
                neutralize(item["notes"]),
                neutralize(item["last_called_at"].isoformat() if item["last_called_at"] else ""),
                neutralize(item["talk_seconds"] if item["talk_seconds"] is not None else ""),
                neutralize(item["recording_url"]),
                neutralize(item["agent"]),
                neutralize(item["timezone"]),
                neutralize(item["assigned_agents"].strip(",")),
                *(neutralize(custom.get(n, "")) for n in names),
                neutralize(json.dumps(other, ensure_ascii=False) if other else ""),
            ]
        )

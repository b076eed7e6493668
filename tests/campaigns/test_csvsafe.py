"""Every CSV the product hands a person is formula-safe in every cell, headers included: the
results export (custom field names are the campaign's words) and the dry run's issue report
(column headers are the sheet's words). Driven as a supervisor: the pages and downloads."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from campaigns import tasks
from campaigns.models import Lead
from tests.campaigns.conftest import sheet_bytes

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://x","y")'


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"))))


def test_export_header_neutralizes_formula_field_names(supervisor_client, campaign):
    campaign.custom_field_names = [HYPERLINK, "@cmd", "Plain"]
    campaign.save(update_fields=["custom_field_names"])
    Lead.objects.create(
        campaign=campaign,
        number="+14155550100",
        custom_fields={HYPERLINK: "-1+2", "Plain": "ok", "+extra": "=x"},
    )
    answer = supervisor_client.get(reverse("supervisor:campaign_export", args=[campaign.pk]))
    header, row = _rows(b"".join(answer.streaming_content))
    assert header[-4:] == ["'" + HYPERLINK, "'@cmd", "Plain", "other_fields"]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in header)
    assert row[header.index("'" + HYPERLINK)] == "'-1+2"
    assert row[header.index("Plain")] == "ok"
    assert row[header.index("number")] == "+14155550100"  # E.164 stays re-importable
    assert row[-1] == '{"+extra": "=x"}'  # JSON text starts with "{": nothing to neutralize


def test_issue_report_neutralizes_formula_headers(supervisor_client, campaign):
    sheet = io.BytesIO(
        sheet_bytes([["Name", "=1+1", HYPERLINK], ["Ann", "12", "+cmd"], ["Bo", "2125550134", ""]])
    )
    sheet.name = "hostile.csv"
    answer = supervisor_client.post(reverse("supervisor:upload_create", args=[campaign.pk]), {"sheet": sheet})
    upload = campaign.uploads.get()
    assert answer["Location"] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    supervisor_client.post(
        reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]),
        {"width": "3", "has_header": "on", "col_0": "name", "col_1": "number", "col_2": "field:City"},
    )
    tasks.upload_dry_run.apply(args=[upload.pk])
    report = supervisor_client.get(reverse("supervisor:upload_issues", args=[campaign.pk, upload.pk]))
    rows = _rows(b"".join(report.streaming_content))
    assert rows[0] == ["line", "column", "value", "reason", "kind"]
    assert rows[1][:3] == ["2", "'=1+1", "12"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)

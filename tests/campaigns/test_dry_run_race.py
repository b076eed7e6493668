"""A new mapping posted while the previous mapping's dry run is still running: the old run's
counts are never shown, the new mapping is checked, and the import uses what was checked."""

from __future__ import annotations

import pytest
from django.urls import reverse

from campaigns import importer, services, sheets, tasks
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import import_form, sheet_bytes, upload_sheet
from tests.campaigns.test_upload_limits import post_sheet
from tests.campaigns.test_workbooks import page_of

pytestmark = pytest.mark.django_db

ROWS = [
    ["home", "mobile", "name"],
    ["+12125550100", "not a number", "Ann"],
    ["+12125550101", "not a number", "Bob"],
    ["+12125550102", "+13105550199", "Cy"],
]


def test_a_mapping_posted_during_a_dry_run_gets_its_own_dry_run(campaign, monkeypatch):
    upload = upload_sheet(campaign, sheet_bytes(ROWS))
    # First mapping: the "home" column holds the numbers (3 valid rows).
    upload = services.upload_set_mapping(
        upload=upload, columns=[sheets.NUMBER, sheets.IGNORE, sheets.NAME], has_header=True
    )
    services.upload_start_dry_run(upload=upload)

    real_dry_run = importer.dry_run
    raced = []

    def dry_run_while_the_supervisor_changes_the_mapping(upload, **kwargs):
        if not raced:
            raced.append(True)
            # The supervisor posts a second mapping while this run goes on ("mobile": 1 valid row).
            fresh = services.upload_set_mapping(
                upload=SheetUpload.objects.get(pk=upload.pk),
                columns=[sheets.IGNORE, sheets.NUMBER, sheets.NAME],
                has_header=True,
            )
            services.upload_start_dry_run(upload=fresh)
        return real_dry_run(upload, **kwargs)

    monkeypatch.setattr(importer, "dry_run", dry_run_while_the_supervisor_changes_the_mapping)
    # The worker runs the first task (superseded midway), then the second.
    assert services.upload_dry_run_run(upload_id=upload.pk) is None
    assert SheetUpload.objects.get(pk=upload.pk).status == SheetUpload.Status.VALIDATING
    checked = services.upload_dry_run_run(upload_id=upload.pk)
    assert checked.status == SheetUpload.Status.VALIDATED
    assert (checked.valid_rows, checked.invalid_rows) == (1, 2), "the counts are the new mapping's"

    services.upload_start_import(upload=checked)
    services.upload_import_run(upload_id=upload.pk)
    assert list(Lead.objects.filter(campaign=campaign).values_list("number", flat=True)) == ["+13105550199"]


def test_a_run_superseded_before_it_starts_is_skipped(campaign):
    upload = upload_sheet(campaign, sheet_bytes(ROWS))
    upload = services.upload_set_mapping(
        upload=upload, columns=[sheets.NUMBER, sheets.IGNORE, sheets.NAME], has_header=True
    )
    services.upload_start_dry_run(upload=upload)
    services.upload_start_dry_run(upload=SheetUpload.objects.get(pk=upload.pk))  # posted twice
    first = services.upload_dry_run_run(upload_id=upload.pk)
    assert first.status == SheetUpload.Status.VALIDATED and first.valid_rows == 3
    assert services.upload_dry_run_run(upload_id=upload.pk) is None  # the second task finds it done


def _map(client, upload, number_column: int) -> None:
    columns = [sheets.IGNORE, sheets.IGNORE, sheets.NAME]
    columns[number_column] = sheets.NUMBER
    form = {"width": "3", "has_header": "on"} | {f"col_{i}": target for i, target in enumerate(columns)}
    client.post(reverse("supervisor:upload_mapping", args=[upload.campaign_id, upload.pk]), form)
    tasks.upload_dry_run.apply(args=[upload.pk])


@pytest.mark.parametrize("htmx", [False, True])
def test_an_import_posted_from_an_older_report_is_refused(supervisor_client, campaign, htmx):
    """Tab A shows the first mapping's report ("Import 3 leads"); in tab B the supervisor maps
    again and that dry run finishes ("Import 1 leads"). Import from tab A: refused, nothing
    imported; from tab B: the leads of B's report."""
    post_sheet(supervisor_client, campaign, sheet_bytes(ROWS))
    upload = SheetUpload.objects.get()
    _map(supervisor_client, upload, 0)  # "home": 3 valid rows
    tab_a = import_form(supervisor_client, upload)
    assert "Import 3 leads" in page_of(supervisor_client, upload)
    _map(supervisor_client, upload, 1)  # "mobile": 1 valid row
    tab_b = import_form(supervisor_client, upload)
    assert tab_a != tab_b and "Import 1 leads" in page_of(supervisor_client, upload)
    url = reverse("supervisor:upload_import", args=[campaign.pk, upload.pk])
    words = "Nothing was imported: the report you imported from is of an earlier mapping"
    headers = {"HX-Request": "true"} if htmx else {}
    for stale in (tab_a, {}, {"run": "x" * 5000}):
        answer = supervisor_client.post(url, stale, headers=headers, follow=not htmx)
        assert words in answer.content.decode()
        assert "Import 1 leads" in answer.content.decode()  # the current report, to import from
        upload.refresh_from_db()
        assert upload.status == SheetUpload.Status.VALIDATED
    answer = supervisor_client.post(url, tab_b, headers=headers, follow=not htmx)
    assert words not in answer.content.decode()
    tasks.upload_import.apply(args=[upload.pk])
    upload.refresh_from_db()
    assert (upload.status, upload.imported_rows, upload.valid_rows) == (SheetUpload.Status.DONE, 1, 1)
    assert list(Lead.objects.filter(campaign=campaign).values_list("number", flat=True)) == ["+13105550199"]

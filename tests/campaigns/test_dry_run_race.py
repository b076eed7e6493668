"""A new mapping posted while the previous mapping's dry run is still running: the old run's
counts are never shown, the new mapping is checked, and the import uses what was checked."""

from __future__ import annotations

import pytest

from campaigns import importer, services, sheets
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import sheet_bytes, upload_sheet

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

"""A supervisor in a real browser: upload a sheet, fix the mapping, read the dry-run report and
watch the live progress bar of the import (pushed by a real Celery worker through daphne)."""

from __future__ import annotations

import csv
import re

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Lead, SheetUpload
from tests.campaigns.browser.conftest import open_campaign_as_supervisor
from tests.factories import make_campaign

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = 40_000  # big enough that the import outlives a few progress pushes

# Records every progress value and status the upload's live partial shows, without a reload.
WATCH = """
(id) => {
  window.__doc = window.__doc || Math.random();
  window.__seen = [];
  const root = document.querySelector('section:last-of-type');
  const look = () => {
    const el = document.getElementById(id);
    if (!el) return;
    const bar = el.querySelector('progress');
    window.__seen.push({status: el.dataset.status, bar: bar ? Number(bar.value) : null});
  };
  new MutationObserver(look).observe(root, {subtree: true, childList: true, attributes: true});
  look();
  return window.__doc;
}
"""


def write_sheet(path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["Who", "Digits", "City"])  # headers auto-mapping does not recognise
        for i in range(ROWS):
            number = "12" if i == 5 else f"(212) {200 + i // 10000}-{i % 10000:04d}"
            writer.writerow([f"Lead {i}", number, "Springfield"])


def test_upload_fix_mapping_dry_run_and_live_import(
    page: Page, live_stack, transactional_db, tmp_path, settings
):
    settings.MEDIA_ROOT = str(settings.VAR_DIR / "media")  # where the worker reads sheets
    campaign = make_campaign(name="Browser import", platform_campaign_id="")  # no Ryng push
    sheet = tmp_path / "crm-export.csv"
    write_sheet(sheet)
    open_campaign_as_supervisor(page, live_stack.base_url, campaign)
    page.set_input_files("#id_sheet", str(sheet))
    page.click("#sheet-form button[type=submit]")
    expect(page.locator("#mapping-form")).to_be_visible()
    expect(page.locator("#sheet-delimiter")).to_have_text("Semicolon")
    upload = SheetUpload.objects.get(campaign=campaign)

    # Fix the mapping: the number and name columns were not recognised.
    expect(page.locator("#map-1")).to_have_value("")
    page.select_option("#map-0", "name")
    page.select_option("#map-1", "number")
    page.click("#dry-run-button")

    # The dry-run report arrives over the WebSocket.
    progress = page.locator(f"#upload-progress-{upload.pk}")
    expect(progress.locator(".report-valid")).to_have_text(f"{ROWS - 1:,}", timeout=60_000)
    expect(progress.locator(".report-invalid")).to_have_text("1")
    expect(progress).to_contain_text("too many or too few digits")
    expect(progress.locator("#issues-link")).to_be_visible()

    doc = page.evaluate(WATCH, f"upload-progress-{upload.pk}")
    page.click("#import-button")
    expect(progress.locator(".upload-status")).to_have_text("Imported", timeout=90_000)
    expect(progress.locator(".report-imported")).to_have_text(f"{ROWS - 1:,}")
    seen = page.evaluate("window.__seen")
    assert page.evaluate("window.__doc") == doc  # no reload: every change came in place
    bars = [s["bar"] for s in seen if s["status"] == "importing" and s["bar"] is not None]
    assert bars, seen  # the progress bar was shown while importing
    assert any(re.fullmatch(r"importing", s["status"] or "") for s in seen)
    assert Lead.objects.filter(campaign=campaign).count() == ROWS - 1

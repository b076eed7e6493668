"""A supervisor uploads a big sheet in a real browser: it goes up in pieces (static/js/upload.js),
the bar climbs to 100%, a piece lost to a dropped connection is sent again from where the server
stopped, and the mapping page follows, as after a form upload."""

from __future__ import annotations

import csv
import hashlib
import re

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import ResumableUpload, SheetUpload
from tests.campaigns.browser.conftest import open_campaign_as_supervisor
from tests.factories import make_campaign

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = 260_000  # about 10 MB: three pieces of 4 MB (UPLOAD_CHUNK_BYTES)

# Reports every value the upload bar takes (an attribute the script sets) to the test.
WATCH_BAR = """
() => {
  const bar = document.getElementById('sheet-upload-bar');
  new MutationObserver(() => window.reportBar(bar.getAttribute('value')))
    .observe(bar, {attributes: true, attributeFilter: ['value']});
}
"""


PIECES = re.compile(r".*/uploads/resumable/[0-9a-f-]+/\?offset=\d+$")


def write_sheet(path) -> bytes:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Name", "Phone", "City"])
        for i in range(ROWS):
            writer.writerow([f"Lead {i}", f"(212) {200 + i // 10000}-{i % 10000:04d}", "Springfield"])
    return path.read_bytes()


def test_a_big_sheet_goes_up_in_pieces_with_a_bar_and_resumes_after_a_drop(
    page: Page, live_stack, transactional_db, tmp_path
):
    campaign = make_campaign(name="Browser resumable", platform_campaign_id="")
    sheet = tmp_path / "crm-export.csv"
    data = write_sheet(sheet)
    assert len(data) > 8 * 1024 * 1024
    open_campaign_as_supervisor(page, live_stack.base_url, campaign)
    bars: list[int] = []
    page.expose_function("reportBar", lambda value: bars.append(int(value)))
    page.evaluate(WATCH_BAR)
    # The connection drops under the second piece: the browser gets a network error.
    dropped: list[str] = []

    def drop_second_piece(route):
        if not dropped and not route.request.url.endswith("?offset=0"):
            dropped.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(PIECES, drop_second_piece)
    page.set_input_files("#id_sheet", str(sheet))
    page.click("#sheet-form button[type=submit]")
    expect(page.locator("#sheet-upload-bar")).to_be_visible()
    expect(page.locator("#mapping-form")).to_be_visible(timeout=90_000)
    expect(page.locator("#map-1")).to_have_value("number")

    assert dropped, "the second piece was not sent"
    assert bars and max(bars) == 100, bars
    assert any(0 < value < 100 for value in bars), bars
    upload = SheetUpload.objects.get(campaign=campaign)
    assert page.url.endswith(f"/supervisor/campaigns/{campaign.pk}/uploads/{upload.pk}/")
    assert (upload.size_bytes, upload.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert ResumableUpload.objects.get().upload_id == upload.pk


def test_an_upload_cut_off_resumes_after_a_reload_when_the_same_file_is_chosen(
    page: Page, live_stack, transactional_db, tmp_path
):
    campaign = make_campaign(name="Browser reload", platform_campaign_id="")
    sheet = tmp_path / "crm-export.csv"
    data = write_sheet(sheet)
    open_campaign_as_supervisor(page, live_stack.base_url, campaign)
    # The network is gone after the first piece: the page keeps trying and says so.
    page.route(
        PIECES, lambda route: route.continue_() if route.request.url.endswith("?offset=0") else route.abort()
    )
    page.set_input_files("#id_sheet", str(sheet))
    page.click("#sheet-form button[type=submit]")
    expect(page.locator("#sheet-upload-state")).to_contain_text("Connection lost: trying again in")
    first = ResumableUpload.objects.get()
    assert first.received == 4 * 1024 * 1024
    # The page reloaded, back online: the same file chosen again goes on from the server's offset.
    page.reload()  # first: the old page's retries end with it
    page.unroute(PIECES)
    page.set_input_files("#id_sheet", str(sheet))
    page.click("#sheet-form button[type=submit]")
    expect(page.locator("#mapping-form")).to_be_visible(timeout=90_000)
    upload = SheetUpload.objects.get(campaign=campaign)
    assert ResumableUpload.objects.get().pk == first.pk  # the same upload, not a new one
    assert ResumableUpload.objects.get().upload_id == upload.pk
    assert upload.sha256 == hashlib.sha256(data).hexdigest()

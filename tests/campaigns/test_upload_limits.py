"""Hostile and mistaken files at the upload, driven as a supervisor would: the campaign page's
upload form with the test client (a real multipart body, so Django's upload handlers run). Each
is refused in words on the page, with no SheetUpload row and nothing under MEDIA_ROOT, and the
refusal is logged; the sheets that must keep working (Excel "Unicode Text") still do."""

from __future__ import annotations

import codecs
import gzip
import io
import logging
import re
import tempfile
import zipfile
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from campaigns import tasks
from campaigns.models import DoNotCall, SheetUpload
from tests.campaigns.conftest import sheet_bytes
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

LEADS = [["Name", "Phone"], ["Ann", "2125550134"], ["Bo", "4155552671"]]


def post_sheet(client, campaign, data: bytes, name: str = "leads.csv"):
    sheet = io.BytesIO(data)
    sheet.name = name
    return client.post(reverse("supervisor:upload_create", args=[campaign.pk]), {"sheet": sheet}, follow=True)


def stored_files() -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def assert_refused(answer, message: str, caplog) -> None:
    """The supervisor is back on the campaign page reading ``message``; nothing was kept."""
    assert answer.status_code == 200
    assert answer.redirect_chain[-1][0].endswith("/") and "/uploads/" not in answer.redirect_chain[-1][0]
    page = answer.content.decode()
    assert message in page, page[page.find("messages") :][:600]
    assert not SheetUpload.objects.exists()
    assert stored_files() == []
    assert any(r.levelno == logging.WARNING and "upload refused" in r.getMessage() for r in caplog.records)


def _zip(name: str, data: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(name, data)
    return out.getvalue()


# Workbooks are welcome (tests/campaigns/test_workbooks.py), and so is a zip of one sheet
# (tests/campaigns/test_zipped_sheets.py); an Office file that holds no workbook is still refused,
# whatever its name says.
NO_WORKBOOK = "This is a Microsoft Office file that is not a workbook"
BINARIES = {
    "zip named xlsx": (_zip("[Content_Types].xml", b"<Types/>"), "leads.xlsx", NO_WORKBOOK),
    "ole2 without a workbook": (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600),
        "leads.xls",
        NO_WORKBOOK,
    ),
    "png": (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(40),
        "leads.csv",
        "This is a PNG image, not a CSV sheet",
    ),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "leads.pdf", "This is a PDF document, not a CSV sheet"),
    "exe": (
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + bytes(100),
        "leads.csv",
        "This is a Windows program (.exe or .dll)",
    ),
    "elf": (b"\x7fELF\x02\x01\x01" + bytes(60), "leads.txt", "This is a program (ELF), not a CSV sheet"),
    "gzip": (gzip.compress(sheet_bytes(LEADS)), "leads.csv", "This is a gzip archive, not a CSV sheet"),
    "control bytes": (
        b"Name,Phone\r\nAnn,2125550134\x00\x00\x01\x02\r\n",
        "leads.csv",
        "This is a binary file",
    ),
    "random": (bytes((i * 7919 + 13) % 251 for i in range(4096)), "leads.csv", "This is a binary file"),
}


@pytest.mark.parametrize("kind", list(BINARIES))
def test_binary_files_are_refused_by_content_whatever_their_name(supervisor_client, campaign, caplog, kind):
    data, name, message = BINARIES[kind]
    assert_refused(post_sheet(supervisor_client, campaign, data, name), message, caplog)


@pytest.mark.parametrize(
    "encode",
    [
        lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),  # Excel "Unicode Text"
        lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
        lambda text: text.encode("utf-16-le"),  # no BOM: every other byte NUL
        lambda text: text.replace("Zoë", "Zoë\x00").encode(),  # a stray NUL in a cell (dropped)
    ],
)
def test_text_with_nul_bytes_is_still_a_sheet(supervisor_client, campaign, encode):
    text = "Name\tPhone\r\nZoë\t2125550134\r\n"
    answer = post_sheet(supervisor_client, campaign, encode(text), "unicode.txt")
    upload = SheetUpload.objects.get()
    assert answer.redirect_chain[-1][0] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    assert "Zoë" in answer.content.decode() and upload.delimiter == "\t"


def test_a_file_over_the_limit_is_refused_while_the_request_is_read(
    supervisor_client, campaign, settings, caplog
):
    settings.UPLOAD_MAX_BYTES = 64 * 1024
    # The body says how big it is: refused on that, before the file is written anywhere.
    big = sheet_bytes(LEADS) + b"Cy,6465550199\r\n" * (200 * 1024 // 15)
    answer = post_sheet(supervisor_client, campaign, big)
    assert_refused(answer, "the limit is 64 KB.", caplog)
    assert re.search(r"This file is 200(\.\d)? KB; the limit is 64 KB\.", answer.content.decode())


def test_a_file_just_over_the_limit_is_refused_as_its_bytes_arrive(
    supervisor_client, campaign, settings, caplog
):
    settings.UPLOAD_MAX_BYTES = 64 * 1024
    data = sheet_bytes(LEADS) + b"Cy,6465550199\r\n" * (70 * 1024 // 15)
    assert_refused(
        post_sheet(supervisor_client, campaign, data), "This file is over 64 KB, the limit.", caplog
    )


def test_the_default_limit_and_a_sheet_under_it(supervisor_client, campaign):
    assert settings.UPLOAD_MAX_BYTES == 200 * 1024 * 1024
    assert settings.SHEET_MAX_COLUMNS == 200
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS > settings.SHEET_MAX_COLUMNS + 2  # the mapping form
    post_sheet(supervisor_client, campaign, sheet_bytes(LEADS))
    assert SheetUpload.objects.get().size_bytes == len(sheet_bytes(LEADS))


def test_empty_and_blank_files(supervisor_client, campaign, caplog):
    assert_refused(post_sheet(supervisor_client, campaign, b""), "This file is empty.", caplog)
    caplog.clear()
    assert_refused(
        post_sheet(supervisor_client, campaign, b"\r\n \r\n\r\n"),
        "This file is empty: it holds no rows",
        caplog,
    )
    answer = supervisor_client.post(reverse("supervisor:upload_create", args=[campaign.pk]), follow=True)
    assert "Choose a sheet to upload." in answer.content.decode()


def test_a_header_only_sheet_is_refused_in_words(supervisor_client, campaign, caplog):
    answer = post_sheet(supervisor_client, campaign, b"Name,Phone,City\r\n\r\n")
    assert_refused(answer, "This sheet has a header row but no leads", caplog)
    assert "Import 0 leads" not in answer.content.decode()


def test_a_dry_run_with_no_valid_row_offers_no_import(supervisor_client, campaign):
    post_sheet(
        supervisor_client, campaign, sheet_bytes([["Name", "Phone"], ["Ann", "12"], ["Bo", "call me"]])
    )
    upload = SheetUpload.objects.get()
    supervisor_client.post(
        reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]),
        {"width": "2", "has_header": "on", "col_0": "name", "col_1": "number"},
    )
    tasks.upload_dry_run.apply(args=[upload.pk])
    page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, upload.pk])).content.decode()
    assert (
        'id="nothing-to-import"' in page and "Import 0 leads" not in page and 'id="import-button"' not in page
    )


def test_a_cell_over_1_mb_in_the_first_rows_is_refused_and_nothing_is_left(
    supervisor_client, campaign, caplog
):
    data = sheet_bytes([["Name", "Phone"], ["Ann", "2125550134"], ["x" * (5 * 1024 * 1024), "4155552671"]])
    answer = post_sheet(supervisor_client, campaign, data)
    assert answer.status_code == 200
    assert_refused(answer, "Line 3 has a cell over 1 MB, the most one cell may hold", caplog)


def test_a_cell_over_1_mb_further_down_fails_the_dry_run_in_words(supervisor_client, campaign):
    rows = [
        ["Name", "Phone"],
        *([f"L{i}", f"212555{i:04d}"] for i in range(300)),
        ["Big", "9" * (2 * 1024 * 1024)],
    ]
    post_sheet(supervisor_client, campaign, sheet_bytes(rows))
    upload = SheetUpload.objects.get()
    supervisor_client.post(
        reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]),
        {"width": "2", "has_header": "on", "col_0": "name", "col_1": "number"},
    )
    tasks.upload_dry_run.apply(args=[upload.pk])
    page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, upload.pk]))
    assert page.status_code == 200
    upload.refresh_from_db()
    assert upload.status == SheetUpload.Status.FAILED
    assert "Line 302 has a cell over 1 MB" in page.content.decode()


def _wide(columns: int) -> bytes:
    header = ["Phone", *(f"c{i}" for i in range(1, columns))]
    return sheet_bytes([header, ["2125550134", *("v" for _ in range(1, columns))]])


def test_a_1200_column_sheet_gets_a_plain_answer(supervisor_client, caplog):
    campaign = make_campaign(name="No fields")
    campaign.custom_field_names = []  # every column offers itself as a custom field: the worst case
    campaign.save(update_fields=["custom_field_names"])
    data = _wide(1200)
    assert len(data) < 16 * 1024
    answer = post_sheet(supervisor_client, campaign, data)
    assert_refused(answer, "This sheet has 1,200 columns; the limit is 200.", caplog)
    assert len(answer.content) < 1024 * 1024


@pytest.mark.parametrize("columns", [200, 1200])
def test_the_mapping_page_grows_linearly_with_the_columns(supervisor_client, settings, columns):
    # Raised by a deployment (the environment sets both at start): the page must still be small.
    settings.SHEET_MAX_COLUMNS = 1200
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 1300
    campaign = make_campaign(name="No fields")
    campaign.custom_field_names = []
    campaign.save(update_fields=["custom_field_names"])
    answer = post_sheet(supervisor_client, campaign, _wide(columns))
    upload = SheetUpload.objects.get()
    assert answer.redirect_chain[-1][0] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    assert f'id="map-{columns - 1}"' in answer.content.decode()
    assert len(answer.content) < columns * 1024  # under 1 KB a column (it was 84 MB for 1,200)
    # ... and every column can still be posted back (one form field per column).
    mapping = {f"col_{i}": "" for i in range(columns)} | {"col_0": "number", "width": str(columns)}
    supervisor_client.post(reverse("supervisor:upload_mapping", args=[campaign.pk, upload.pk]), mapping)
    upload.refresh_from_db()
    assert upload.status == SheetUpload.Status.VALIDATING


def test_intake_body_over_the_limit_is_a_json_413(client, campaign, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    answer = client.post(
        reverse("supervisor:intake", args=[campaign.pk]),
        data=b'{"leads": "' + b"x" * 2048 + b'"}',
        content_type="application/json",
        headers={"Authorization": f"Bearer {campaign.intake_token}"},
    )
    assert answer.status_code == 413
    assert answer["Content-Type"] == "application/json"
    assert answer.json() == {"error": True, "message": "The body is over 1 KB, the limit."}


def test_the_do_not_call_upload_refuses_binaries_and_leaves_no_temporary_file(
    supervisor_client, monkeypatch, tmp_path, caplog
):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    url = reverse("supervisor:dnc_upload")
    png = io.BytesIO(BINARIES["png"][0])
    png.name = "numbers.csv"
    answer = supervisor_client.post(url, {"sheet": png}, follow=True)
    assert "This is a PNG image, not a CSV sheet" in answer.content.decode()
    assert not DoNotCall.objects.exists()
    assert any("refused" in r.getMessage() for r in caplog.records)
    numbers = io.BytesIO(b"2125550134\r\n4155552671\r\n")
    numbers.name = "numbers.csv"
    answer = supervisor_client.post(url, {"sheet": numbers}, follow=True)
    assert "Added 2" in answer.content.decode()
    assert list((tmp_path / "tmp").iterdir()) == []  # the small file's temporary copy is gone

"""A zip holding one sheet, as a CRM's export or a mail attachment brings it: uploaded through the
campaign page's form and through the resumable upload, it imports exactly the leads of the sheet
itself. A zip of several files, of something that is no sheet, or that unpacks past the size
limit (a zip bomb) is refused in words naming what it holds, and nothing is left on disk: no
upload row, no file under MEDIA_ROOT, no temporary file."""

from __future__ import annotations

import io
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
from django.urls import reverse

from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import run_import, sheet_bytes
from tests.campaigns.test_resumable import PIECE, finish, send, start
from tests.campaigns.test_upload_limits import assert_refused, post_sheet, stored_files
from tests.campaigns.test_workbooks import xlsx
from tests.factories import make_campaign

pytestmark = pytest.mark.django_db

ROWS = [["Name", "Phone", "City"]] + [[f"Zoë {i}", f"212555{i:04d}", f"Town {i % 7}"] for i in range(300)]


@pytest.fixture(autouse=True)
def temp_dir(monkeypatch, settings, tmp_path) -> Path:
    """Temporary files (Django's for a request body over 1 KB, the unpacked sheet) go here."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.UPLOAD_CHUNK_BYTES = PIECE
    return folder


def zipped(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def leads_of(campaign) -> dict[str, tuple[str, str, dict]]:
    return {
        lead.number: (lead.name, lead.raw_number, lead.custom_fields)
        for lead in Lead.objects.filter(campaign=campaign)
    }


def upload_through_the_form(client, campaign, data: bytes, name: str) -> SheetUpload:
    answer = post_sheet(client, campaign, data, name)
    upload = SheetUpload.objects.get(campaign=campaign)
    assert answer.redirect_chain[-1][0] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    return upload


SHEET = sheet_bytes(ROWS)
ZIPS = {
    "csv": (SHEET, {"leads.csv": SHEET}),
    "tab-separated text in cp1252": (
        sheet_bytes(ROWS, encoding="cp1252", delimiter="\t"),
        {"export/leads.txt": sheet_bytes(ROWS, encoding="cp1252", delimiter="\t")},
    ),
    # macOS Finder's "Compress" adds a resource fork beside the file: not a second file.
    "csv zipped on a Mac": (SHEET, {"leads.csv": SHEET, "__MACOSX/._leads.csv": b"\x00\x05\x16\x07"}),
    "xlsx": (xlsx(ROWS), {"leads.xlsx": xlsx(ROWS)}),
}


@pytest.mark.parametrize("kind", list(ZIPS))
def test_a_zip_of_one_sheet_imports_the_leads_of_the_sheet_itself(supervisor_client, temp_dir, kind):
    plain, members = ZIPS[kind]
    sheet_name = Path(next(iter(members))).name
    by_itself, in_a_zip = make_campaign(name="Sheet"), make_campaign(name="Zip")
    direct = run_import(upload_through_the_form(supervisor_client, by_itself, plain, sheet_name))
    upload = upload_through_the_form(supervisor_client, in_a_zip, zipped(members), "crm-export.zip")
    page = supervisor_client.get(reverse("supervisor:upload", args=[in_a_zip.pk, upload.pk])).content.decode()
    assert f"“{sheet_name}”, unpacked from this zip file" in page and "Zoë 0" in page
    assert upload.original_name == "crm-export.zip"
    assert (upload.encoding, upload.delimiter) == (direct.encoding, direct.delimiter)
    upload = run_import(upload)
    assert (upload.status, upload.imported_rows) == (SheetUpload.Status.DONE, 300)
    assert leads_of(in_a_zip) == leads_of(by_itself)
    assert len(leads_of(in_a_zip)) == 300
    assert list(temp_dir.iterdir()) == []


def test_a_zip_of_one_sheet_through_the_resumable_upload(supervisor_client, campaign, temp_dir):
    data = zipped({"leads.csv": SHEET})
    upload_id = start(supervisor_client, campaign, data, "leads.zip").json()["id"]
    send(supervisor_client, campaign, upload_id, data)
    answer = finish(supervisor_client, campaign, upload_id)
    assert answer.status_code == 200, answer.content
    upload = SheetUpload.objects.get()
    assert answer.json()["redirect"] == reverse("supervisor:upload", args=[campaign.pk, upload.pk])
    assert run_import(upload).imported_rows == 300
    assert leads_of(campaign)["+12125550299"] == ("Zoë 299", "2125550299", {"City": "Town 5"})
    assert [p.name for p in stored_files() if p.parent.name != "reports"] == ["leads.csv"]
    assert list(temp_dir.iterdir()) == []


def _lying(data: bytes, declared: int) -> bytes:
    """A zip whose one member claims to unpack to ``declared`` bytes, in its local header and in
    the central directory (a crafted bomb hides its size this way)."""
    raw = bytearray(data)
    raw[22:26] = struct.pack("<I", declared)  # local file header: uncompressed size
    central = raw.rindex(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", declared)
    return bytes(raw)


BOMB = b"2125550134,Ann\r\n" * 20_000  # 320 KB that deflate packs into about 1 KB
REFUSED = {
    "several files": (
        {"leads.csv": SHEET, "notes.txt": b"call after 5", "logo.png": b"\x89PNG\r\n\x1a\n"},
        "This zip file holds 3 files (“leads.csv”, “notes.txt”, “logo.png”): upload a zip of one "
        "sheet, or the sheet itself.",
    ),
    "a pdf": (
        {"leads.pdf": b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj"},
        "This zip file holds “leads.pdf”: This is a PDF document, not a CSV sheet",
    ),
    "a zip in the zip": (
        {"inner.zip": zipped({"leads.csv": SHEET})},
        "This zip file holds “inner.zip”: This is a zip file inside the zip",
    ),
    "a folder only": ({"leads/": b""}, "This zip file holds no file"),
    "a bomb": (
        {"leads.csv": BOMB},
        "This zip file holds “leads.csv”: This file is 312.5 KB; the limit is 64 KB.",
    ),
    "a bomb that lies about its size": (
        _lying(zipped({"leads.csv": BOMB}), 1000),
        "This zip file is damaged",
    ),
    "a header and no lead": ({"leads.csv": b"Name,Phone\r\n"}, "This sheet has a header row but no leads"),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_zips_that_hold_no_one_sheet_are_refused_in_words(
    supervisor_client, campaign, settings, temp_dir, caplog, kind
):
    settings.UPLOAD_MAX_BYTES = 64 * 1024
    members, message = REFUSED[kind]
    data = members if isinstance(members, bytes) else zipped(members)
    assert len(data) < settings.UPLOAD_MAX_BYTES
    assert_refused(post_sheet(supervisor_client, campaign, data, "leads.zip"), message, caplog)
    assert list(temp_dir.iterdir()) == []
    # The same through the resumable upload: refused at the finish, its partial file gone.
    upload_id = start(supervisor_client, campaign, data, "leads.zip").json()["id"]
    send(supervisor_client, campaign, upload_id, data)
    answer = finish(supervisor_client, campaign, upload_id)
    assert answer.status_code == 400 and message in answer.json()["message"]
    assert not SheetUpload.objects.exists() and stored_files() == []
    assert list(temp_dir.iterdir()) == []


def test_a_path_in_the_zip_never_leads_out_of_the_upload_folder(supervisor_client, campaign, tmp_path):
    upload = upload_through_the_form(
        supervisor_client, campaign, zipped({"../../../evil.csv": SHEET}), "x.zip"
    )
    assert upload.mapping["zip"]["member"] == "evil.csv"
    assert [p.name for p in stored_files()] == ["evil.csv"]
    assert [p.name for p in tmp_path.rglob("*.csv")] == ["evil.csv"]

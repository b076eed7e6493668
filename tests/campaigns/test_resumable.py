"""The resumable upload (campaigns/resumable.py) driven as the page's script drives it, with the
test client: a sheet in pieces, in order or resumed after a gap, refusals in words (a wrong
offset, another supervisor's upload, an agent, the size and content limits on the assembled
file), and the whole file then previewed exactly as a form upload of the same bytes."""

from __future__ import annotations

import hashlib
import json
import tempfile
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns.models import ResumableUpload, SheetUpload
from tests.campaigns.conftest import sheet_bytes
from tests.campaigns.test_upload_limits import post_sheet
from tests.campaigns.test_workbooks import xlsx
from tests.factories import PASSWORD, make_user_agent

pytestmark = pytest.mark.django_db

PIECE = 64 * 1024
ROWS = [["Name", "Phone", "City"]] + [[f"Zoë {i}", f"212555{i:04d}", "Springfield"] for i in range(9000)]


@pytest.fixture(autouse=True)
def _small_pieces(settings):
    settings.UPLOAD_CHUNK_BYTES = PIECE


def start(client, campaign, data: bytes, name: str = "crm.csv", size: int | None = None):
    return client.post(
        reverse("supervisor:upload_resumable_start", args=[campaign.pk]),
        json.dumps({"name": name, "size": len(data) if size is None else size}),
        content_type="application/json",
    )


def piece_url(campaign, upload_id: str) -> str:
    return reverse("supervisor:upload_resumable", args=[campaign.pk, upload_id])


def put(client, campaign, upload_id: str, offset, data: bytes):
    return client.put(
        f"{piece_url(campaign, upload_id)}?offset={offset}", data, content_type="application/octet-stream"
    )


def finish(client, campaign, upload_id: str):
    return client.post(reverse("supervisor:upload_resumable_finish", args=[campaign.pk, upload_id]))


def send(client, campaign, upload_id: str, data: bytes, offset: int = 0, until: int | None = None) -> int:
    """Send ``data`` from ``offset`` in pieces, as the page does; the server's offset after."""
    until = len(data) if until is None else until
    while offset < until:
        answer = put(client, campaign, upload_id, offset, data[offset : min(until, offset + PIECE)])
        assert answer.status_code == 200, answer.content
        offset = answer.json()["offset"]
    return offset


def files() -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def another_supervisor() -> Client:
    make_user_agent("boss2", 8, supervisor=True)
    client = Client()
    assert client.login(request=HttpRequest(), username="boss2", password=PASSWORD)
    return client


@pytest.mark.parametrize(("make", "name"), [(lambda: sheet_bytes(ROWS), "crm.csv"), (xlsx, "leads.xlsx")])
def test_a_sheet_sent_in_pieces_previews_as_a_form_upload(supervisor_client, campaign, make, name):
    data = make()
    answer = start(supervisor_client, campaign, data, name)
    assert answer.status_code == 200
    upload_id = answer.json()["id"]
    assert answer.json()["offset"] == 0 and answer.json()["chunk"] == PIECE
    assert send(supervisor_client, campaign, upload_id, data) == len(data)
    answer = finish(supervisor_client, campaign, upload_id)
    assert answer.status_code == 200, answer.content
    sheet = SheetUpload.objects.get()
    assert answer.json()["redirect"] == reverse("supervisor:upload", args=[campaign.pk, sheet.pk])
    assert (sheet.original_name, sheet.size_bytes) == (name, len(data))
    assert sheet.sha256 == hashlib.sha256(data).hexdigest()
    assert not (Path(settings.MEDIA_ROOT) / "sheets" / "partial" / f"{upload_id}.part").exists()
    # Asked again (its answer was lost): the same sheet, nothing new.
    assert finish(supervisor_client, campaign, upload_id).json()["redirect"] == answer.json()["redirect"]
    assert SheetUpload.objects.count() == 1
    page = supervisor_client.get(answer.json()["redirect"]).content.decode()
    # The same bytes through the form: the same reading and the same proposed mapping.
    post_sheet(supervisor_client, campaign, data, name)
    form_sheet = SheetUpload.objects.exclude(pk=sheet.pk).get()
    assert (sheet.encoding, sheet.delimiter, sheet.mapping) == (
        form_sheet.encoding,
        form_sheet.delimiter,
        form_sheet.mapping,
    )
    form_page = supervisor_client.get(reverse("supervisor:upload", args=[campaign.pk, form_sheet.pk]))
    assert _mapping_table(page) == _mapping_table(form_page.content.decode())


def _mapping_table(page: str) -> str:
    return page[page.index('<table class="sv-table sv-mapping">') : page.index("</table>")]


def test_a_dropped_connection_resumes_where_the_server_stopped(supervisor_client, campaign):
    data = sheet_bytes(ROWS)
    upload_id = start(supervisor_client, campaign, data).json()["id"]
    held = send(supervisor_client, campaign, upload_id, data, until=3 * PIECE)
    # The connection drops; later (a new session, the page reloaded) the page asks where to resume.
    later = Client()
    assert later.login(request=HttpRequest(), username="boss", password=PASSWORD)
    status = later.get(piece_url(campaign, upload_id))
    assert status.status_code == 200
    assert status.json() == {
        "error": False,
        "id": upload_id,
        "name": "crm.csv",
        "size": len(data),
        "offset": held,
        "chunk": PIECE,
        "done": None,
    }
    # The last piece's answer was lost, so the page sends it again: refused, with where to go on.
    again = put(later, campaign, upload_id, held - PIECE, data[held - PIECE : held])
    assert again.status_code == 409
    assert again.json()["offset"] == held
    send(later, campaign, upload_id, data, offset=held)
    assert finish(later, campaign, upload_id).status_code == 200
    assert Path(SheetUpload.objects.get().file.path).read_bytes() == data


def test_a_wrong_offset_is_refused_in_words(supervisor_client, campaign):
    data = sheet_bytes(ROWS)
    upload_id = start(supervisor_client, campaign, data).json()["id"]
    send(supervisor_client, campaign, upload_id, data, until=PIECE)
    answer = put(supervisor_client, campaign, upload_id, 3 * PIECE, data[3 * PIECE : 4 * PIECE])
    assert answer.status_code == 409
    assert answer.json() == {
        "error": True,
        "message": "This piece starts at byte 196,608, but the server holds 65,536 bytes of the file: "
        "send it from byte 65,536.",
        "offset": 65536,
    }
    answer = put(supervisor_client, campaign, upload_id, "x", data[:10])
    assert answer.status_code == 400
    assert answer.json()["message"] == "Say where this piece starts (offset, a whole number of bytes)."
    too_big = put(supervisor_client, campaign, upload_id, PIECE, data[PIECE : 3 * PIECE])
    assert too_big.status_code == 413
    assert too_big.json()["message"] == "A piece may be 64 KB at most; this one is 128 KB."
    early = finish(supervisor_client, campaign, upload_id)
    assert early.status_code == 409
    assert early.json()["message"] == (
        f"The file is not all here yet: 65,536 of {len(data):,} bytes. Send the rest first."
    )
    assert ResumableUpload.objects.get().received == PIECE


def test_only_the_supervisor_who_started_it_continues_it(supervisor_client, agent_client, campaign):
    data = sheet_bytes(ROWS)
    upload_id = start(supervisor_client, campaign, data).json()["id"]
    send(supervisor_client, campaign, upload_id, data, until=PIECE)
    other = another_supervisor()
    words = (
        "This upload was started by another supervisor: only they can continue it. Upload the file "
        "yourself to import it."
    )
    for answer in (
        other.get(piece_url(campaign, upload_id)),
        put(other, campaign, upload_id, PIECE, data[PIECE : 2 * PIECE]),
        finish(other, campaign, upload_id),
    ):
        assert (answer.status_code, answer.json()["message"]) == (403, words)
    # Agents are refused every step; anonymous visitors are sent to sign in.
    assert start(agent_client, campaign, data).status_code == 403
    assert agent_client.get(piece_url(campaign, upload_id)).status_code == 403
    assert put(agent_client, campaign, upload_id, PIECE, data[PIECE : 2 * PIECE]).status_code == 403
    assert finish(agent_client, campaign, upload_id).status_code == 403
    anonymous = put(Client(), campaign, upload_id, PIECE, data[PIECE : 2 * PIECE])
    assert anonymous.status_code == 302 and "login" in anonymous["Location"]
    assert ResumableUpload.objects.get().received == PIECE  # nobody else added a byte
    # Another campaign's address does not reach it.
    unknown = supervisor_client.get(piece_url(campaign, "00000000-0000-0000-0000-000000000000"))
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "No such upload (it may have expired): upload the file again."


def test_the_limits_hold_for_the_assembled_file(supervisor_client, campaign, settings):
    settings.UPLOAD_MAX_BYTES = 200 * 1024
    big = start(supervisor_client, campaign, b"", size=250 * 1024)
    assert (big.status_code, big.json()["message"]) == (413, "This file is 250 KB; the limit is 200 KB.")
    empty = start(supervisor_client, campaign, b"")
    assert (empty.status_code, empty.json()["message"]) == (400, "This file is empty.")
    # A binary file is refused at its first piece, whatever its name; nothing is kept.
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400
    upload_id = start(supervisor_client, campaign, png, "leads.csv").json()["id"]
    answer = put(supervisor_client, campaign, upload_id, 0, png[:PIECE])
    assert answer.status_code == 415
    assert answer.json()["message"].startswith("This is a PNG image, not a CSV sheet")
    assert not ResumableUpload.objects.exists() and files() == []
    # A piece may not run past the size announced.
    data = sheet_bytes(ROWS[:200])
    upload_id = start(supervisor_client, campaign, data).json()["id"]
    answer = put(supervisor_client, campaign, upload_id, 0, data + b"2125550000\r\n")
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        f"This piece runs past the file's end: the file was announced as {len(data):,} bytes."
    )
    # Whole, the file meets every check of a form upload: a header and no lead is refused.
    header_only = sheet_bytes(ROWS[:1])
    upload_id = start(supervisor_client, campaign, header_only).json()["id"]
    send(supervisor_client, campaign, upload_id, header_only)
    answer = finish(supervisor_client, campaign, upload_id)
    assert answer.status_code == 400
    assert answer.json()["message"] == (
        "This sheet has a header row but no leads: there is nothing under it to import."
    )
    assert not SheetUpload.objects.exists()
    assert [p.name for p in files()] == [f"{ResumableUpload.objects.get().pk}.part"]  # the one still open


def test_an_abandoned_upload_is_swept(supervisor_client, campaign):
    data = sheet_bytes(ROWS)
    upload_id = start(supervisor_client, campaign, data).json()["id"]
    send(supervisor_client, campaign, upload_id, data, until=PIECE)
    ResumableUpload.objects.filter(pk=upload_id).update(updated_at=timezone.now() - timedelta(hours=25))
    fresh = start(supervisor_client, campaign, data).json()["id"]
    assert list(ResumableUpload.objects.values_list("pk", flat=True)) == [uuid.UUID(fresh)]
    assert [p.name for p in files()] == [f"{fresh}.part"]
    assert supervisor_client.get(piece_url(campaign, upload_id)).status_code == 404


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=json_values,
    size=json_values | st.integers(min_value=-(2**70), max_value=2**70),
    body=st.binary(max_size=600) | st.text(max_size=200).map(str.encode),
    offset=st.text(max_size=12) | st.integers(min_value=-5, max_value=2**64).map(str),
    raw_start=st.binary(max_size=80),
)
def test_anything_sent_to_the_protocol_is_answered_in_words(
    supervisor_client, campaign, name, size, body, offset, raw_start
):
    """Generated names, sizes, offsets and bytes: every answer is JSON with words, never a 500."""
    url = reverse("supervisor:upload_resumable_start", args=[campaign.pk])
    answers = [
        supervisor_client.post(
            url, json.dumps({"name": name, "size": size}), content_type="application/json"
        ),
        supervisor_client.post(url, raw_start, content_type="application/json"),
    ]
    started = start(supervisor_client, campaign, body or b"x", str(name))
    upload_id = started.json()["id"]
    answers += [
        put(supervisor_client, campaign, upload_id, offset, body),
        supervisor_client.get(piece_url(campaign, upload_id)),
        finish(supervisor_client, campaign, upload_id),
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.content
        assert answer.json()["error"] is False or answer.json()["message"], answer.content


def test_a_name_with_nothing_storable_is_stored_under_a_plain_one(supervisor_client, campaign):
    """Found by the generated test: a file named "[]" (nothing a file name can keep) answered an
    HTML 400 at finish; it is stored as sheet.csv and the page keeps the name it came with."""
    data = b"Name,Phone\r\nAnn,2125550134\r\n"
    upload_id = start(supervisor_client, campaign, data, "[]").json()["id"]
    assert put(supervisor_client, campaign, upload_id, "0", data).status_code == 200
    done = finish(supervisor_client, campaign, upload_id)
    assert done.status_code == 200, done.content
    upload = SheetUpload.objects.get(campaign=campaign)
    assert upload.original_name == "[]" and upload.file.name.endswith(".csv")


REFUSALS = {
    "header only": (sheet_bytes(ROWS[:1]), "This sheet has a header row but no leads"),
    "a cell over 1 MB": (
        sheet_bytes([["Name", "Phone"], ["x" * (1024 * 1024 + 10), "2125550134"]]),
        "Line 2 has a cell over 1 MB",
    ),
    "too wide": (sheet_bytes([["Phone", *(f"c{i}" for i in range(250))], ["2125550134"]]), "251 columns"),
    "a png": (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 400, "This is a PNG image, not a CSV sheet"),
    "a damaged workbook": (lambda: xlsx()[:3000], "This workbook is damaged"),
}


@pytest.mark.parametrize("kind", list(REFUSALS))
def test_a_refusal_leaves_nothing_on_disk_whichever_way_the_file_came(
    supervisor_client, campaign, monkeypatch, settings, tmp_path, kind
):
    """Refused through the form or at the resumable upload's first piece or finish: the
    answer says why, and nothing stays: no row, no file under MEDIA_ROOT (the ``.part`` file of
    the resumable upload included), no temporary file (a request body over 1 KB is one)."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024
    data, words = REFUSALS[kind]
    data = data() if callable(data) else data
    answer = post_sheet(supervisor_client, campaign, data, "leads.csv")
    assert words in answer.content.decode()
    assert (SheetUpload.objects.count(), files(), list(temp.iterdir())) == (0, [], [])
    upload_id = start(supervisor_client, campaign, data, "leads.csv").json()["id"]
    offset = 0
    while offset < len(data):
        answer = put(supervisor_client, campaign, upload_id, offset, data[offset : offset + PIECE])
        if answer.status_code != 200:
            break  # refused at its first piece
        offset = answer.json()["offset"]
    else:
        answer = finish(supervisor_client, campaign, upload_id)
    assert answer.status_code in (400, 415) and words in answer.json()["message"]
    assert (ResumableUpload.objects.count(), SheetUpload.objects.count()) == (0, 0)
    assert (files(), list(temp.iterdir())) == ([], [])
    assert supervisor_client.get(piece_url(campaign, upload_id)).status_code == 404

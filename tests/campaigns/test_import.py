"""Sheet import: every encoding and delimiter, malformed rows, duplicates, do-not-call, repeats,
cancel, and a 100,000-row sheet. Task bodies run in-process here (test_worker.py runs them in a
real Celery worker); the database path is whichever DATABASE_URL names (SQLite by default)."""

from __future__ import annotations

import codecs
import csv
import io
import time

import pytest
from django.db import connection

from campaigns import importer, services
from campaigns.models import DoNotCall, Lead, SheetUpload
from tests.campaigns.conftest import run_dry, run_import, sheet_bytes, upload_sheet
from tests.factories import make_campaign, platform_username

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = [
    ["Name", "Phone", "City", "Plan"],
    ["Zoë Ångström", "(212) 555-0134", "New York", "Plus"],
    ["José Müller", "+44 20 7946 0018", "London, UK", 'The "best"'],
    ["Multi line", "+1 415 555 2671", "San\nFrancisco", "Basic"],
    ["Pipe|Semi;Tab", "646-555-0199", "Brooklyn", ""],
]

ENCODINGS = {
    "utf-8": lambda text: text.encode("utf-8"),
    "utf-8-bom": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le-bom": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be-bom": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "cp1252": lambda text: text.encode("cp1252"),
}


def _text(rows, delimiter: str, crlf: bool) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    return out.getvalue()


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_encoding_and_delimiter(campaign, encoding, delimiter):
    data = ENCODINGS[encoding](_text(ROWS, delimiter, crlf=encoding != "cp1252"))
    upload = run_import(upload_sheet(campaign, data))
    assert upload.delimiter == delimiter
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 4
    leads = {lead.number: lead for lead in Lead.objects.filter(campaign=campaign)}
    assert set(leads) == {"+12125550134", "+442079460018", "+14155552671", "+16465550199"}
    assert leads["+12125550134"].name == "Zoë Ångström"
    assert leads["+442079460018"].name == "José Müller"
    assert leads["+442079460018"].custom_fields == {"City": "London, UK", "Plan": 'The "best"'}
    assert leads["+14155552671"].custom_fields["City"] == "San\nFrancisco"
    assert leads["+16465550199"].name == "Pipe|Semi;Tab"
    assert "Plan" not in leads["+16465550199"].custom_fields  # empty cells are not stored
    assert leads["+12125550134"].timezone == "America/New_York"
    assert leads["+12125550134"].raw_number == "(212) 555-0134"


def test_utf16_without_bom_and_latin1(campaign):
    text = _text(ROWS, "\t", crlf=True)
    upload = upload_sheet(campaign, text.encode("utf-16-le"))
    assert upload.encoding == "utf-16-le"
    # A byte cp1252 leaves undefined (0x81) means Latin-1.
    latin = _text([["Name", "Phone"], ["A\x81b", "2125550134"]], ",", crlf=True).encode("latin-1")
    other = make_campaign(name="Latin")
    upload = run_import(upload_sheet(other, latin))
    assert upload.encoding == "latin-1"
    assert Lead.objects.get(campaign=other).name == "A\x81b"


def test_malformed_rows_are_reported_and_no_valid_row_is_lost(campaign):
    rows = [
        ["Name", "Phone", "City", "Plan"],
        ["Good 1", "2125550134", "A", "B"],
        ["No number", "", "A", "B"],
        ["Short", "555-01", "A", "B"],
        ["Letters", "call me", "A", "B"],
        ["Good 2", "+14155552671", "A", "B"],
        ["Too few columns"],
        ["Good 3", "646 555 0199"],
        ["Dup of good 1", "+1 212 555 0134", "", ""],
        ["Good 4", "+447911123456", "", "", "extra", "cells"],
    ]
    DoNotCall.objects.create(number="+16465550199", reason="asked")
    upload = run_dry(upload_sheet(campaign, sheet_bytes(rows)))
    assert upload.status == SheetUpload.Status.VALIDATED
    assert (upload.total_rows, upload.valid_rows, upload.invalid_rows, upload.dnc_rows) == (9, 3, 4, 1)
    issues = {i["line"]: i for i in upload.report["sample"]}
    assert issues[3]["reason"] == "The phone number cell is empty." and issues[3]["column"] == "Phone"
    assert issues[4]["reason"] in (
        "The phone number has too many or too few digits for its country.",
        "The phone number is too short to be dialed.",
    )
    assert issues[5]["column"] == "Phone" and issues[5]["value"] == "call me"
    assert issues[7]["reason"] == "This row ends before the phone number column: it has too few cells."
    assert issues[8]["kind"] == "dnc"
    assert issues[9]["kind"] == "duplicate"
    # The downloadable report has every issue with its line, column and reason.
    with open(importer.report_path(upload), encoding="utf-8") as handle:
        report = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in report] == sorted(issues)
    services.upload_start_import(upload=upload)
    upload = services.upload_import_run(upload_id=upload.pk)
    assert upload.imported_rows == 3
    assert set(Lead.objects.values_list("number", flat=True)) == {
        "+12125550134",
        "+14155552671",
        "+447911123456",
    }


def test_quoted_newlines_keep_line_numbers(campaign):
    text = 'Name,Phone\r\n"Two\r\nlines",2125550134\r\nBad,123\r\n'
    upload = run_dry(upload_sheet(campaign, text.encode()))
    assert upload.report["sample"][0]["line"] == 4


def test_repeated_upload_adds_nothing(campaign):
    data = sheet_bytes(ROWS)
    first = run_import(upload_sheet(campaign, data))
    assert first.imported_rows == 4
    second = run_dry(upload_sheet(campaign, data))
    assert second.valid_rows == 0
    assert second.report["duplicates_campaign"] == 4
    services.upload_start_import(upload=second)
    second = services.upload_import_run(upload_id=second.pk)
    assert second.status == SheetUpload.Status.DONE
    assert second.imported_rows == 0
    assert Lead.objects.filter(campaign=campaign).count() == 4
    # The same task delivered twice (acks_late redelivery) is also harmless.
    assert services.upload_import_run(upload_id=second.pk) is None


def test_mapping_change_and_headerless_sheet(campaign):
    data = sheet_bytes([["2125550134", "Ann", "x"], ["4155552671", "Bob", "y"]])
    upload = upload_sheet(campaign, data)
    assert upload.mapping["has_header"] is False
    assert upload.mapping["columns"][0] == "number"
    services.upload_set_mapping(upload=upload, columns=["number", "name", "field:Plan"], has_header=False)
    upload = run_import(SheetUpload.objects.get(pk=upload.pk))
    assert upload.imported_rows == 2
    assert Lead.objects.get(number="+14155552671").custom_fields == {"Plan": "y"}
    with pytest.raises(services.ServiceError):
        services.upload_set_mapping(upload=upload, columns=["name", "name"], has_header=False)


def test_inline_agents_column(campaign, agent):
    username = platform_username(agent, campaign.platform)
    rows = [["Phone", "Agents"], ["2125550134", f"{username}; someone@else"], ["4155552671", ""]]
    upload = upload_sheet(campaign, sheet_bytes(rows))
    assert upload.mapping["columns"] == ["number", "agents"]
    run_import(upload)
    assert Lead.objects.get(number="+12125550134").assigned_agents == f",{agent.user.username},someone@else,"
    assert Lead.objects.get(number="+14155552671").assigned_agents == ""


def test_cancel_before_the_insert_adds_nothing(campaign):
    upload = run_dry(upload_sheet(campaign, sheet_bytes(ROWS)))
    services.upload_start_import(upload=upload)
    services.upload_cancel(upload=upload)
    assert services.upload_import_run(upload_id=upload.pk) is None
    assert SheetUpload.objects.get(pk=upload.pk).status == SheetUpload.Status.CANCELLED
    # A cancel that lands while the import runs: the importer notices and stops before inserting.
    upload = run_dry(upload_sheet(campaign, sheet_bytes(ROWS)))
    services.upload_start_import(upload=upload)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        services.upload_cancel(upload=upload)
        return True

    with pytest.raises(importer.Cancelled):
        importer.commit(SheetUpload.objects.get(pk=upload.pk), cancelled=cancelled)
    assert Lead.objects.count() == 0


def _big_sheet(rows: int) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Phone", "City"])
    for i in range(rows):
        # 212-2xx-xxxx .. 212-9xx-xxxx: valid New York numbers, every one distinct; 1% invalid.
        number = (
            "12345"
            if i % 100 == 7
            else (
                f"+1212{200 + i // 10000}{i % 10000:04d}"
                if i % 2
                else f"(212) {200 + i // 10000}-{i % 10000:04d}"
            )
        )
        writer.writerow([f"Lead {i}", number, "City"])
    return out.getvalue().encode()


@pytest.mark.slow
def test_a_100k_row_sheet_imports(campaign):
    data = _big_sheet(100_000)
    started = time.monotonic()
    upload = run_import(upload_sheet(campaign, data, name="big.csv"))
    elapsed = time.monotonic() - started
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.invalid_rows == 1000
    assert upload.imported_rows == 99_000
    assert Lead.objects.filter(campaign=campaign).count() == 99_000
    print(f"100k rows: dry run + import in {elapsed:.1f}s on {connection.vendor}")


@pytest.mark.postgres
def test_postgres_copy_path(campaign):
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://...")
    upload = run_import(upload_sheet(campaign, sheet_bytes(ROWS)))
    assert upload.imported_rows == 4
    lead = Lead.objects.get(number="+442079460018")
    assert lead.custom_fields == {"City": "London, UK", "Plan": 'The "best"'}
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'campaigns_stage_%%'")
        assert cur.fetchone()[0] == 0  # the staging table is gone


class _DeadCache:
    """Django's cache with its Redis gone."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise ConnectionError("Redis is down")

        return fail


def test_an_import_completes_and_cancels_still_land_while_the_cache_is_down(campaign, monkeypatch):
    monkeypatch.setattr(services, "cache", _DeadCache())
    data = b"Name,Phone\n" + b"".join(f"Lead {i},+1212555{i:04d}\n".encode() for i in range(50))
    upload = run_import(upload_sheet(campaign, data))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 50
    other = upload_sheet(campaign, data, name="again.csv")
    services.upload_start_dry_run(upload=other)
    assert services.upload_cancel(upload=other).status == SheetUpload.Status.CANCELLED


def test_issues_are_grouped_by_reason_with_counts_and_examples(campaign, supervisor_client):
    """More issues than the page lists one by one: each reason once, with its count (which add
    up to every issue) and its first rows; the page shows the groups, escaped."""
    rows = [["Name", "Phone"]]
    rows += [[f"Empty {n}", ""] for n in range(importer.REPORT_SAMPLE + 50)]
    rows += [[f"Words {n}", "<b>call me</b>"] for n in range(30)]
    rows += [["Good", "2125550134"], ["Again", "+1 212 555 0134"]]
    upload = run_dry(upload_sheet(campaign, sheet_bytes(rows)))
    groups = {group["reason"]: group for group in upload.report["reasons"]}
    empty = groups["The phone number cell is empty."]
    assert empty["count"] == importer.REPORT_SAMPLE + 50 and empty["kind"] == "invalid"
    assert [ex["line"] for ex in empty["examples"]] == [2, 3, 4]
    assert sum(group["count"] for group in groups.values()) == upload.invalid_rows + 1  # + the duplicate
    assert [g["count"] for g in upload.report["reasons"]] == sorted(
        (g["count"] for g in groups.values()), reverse=True
    )
    assert len(upload.report["sample"]) == importer.REPORT_SAMPLE
    page = supervisor_client.get(f"/supervisor/campaigns/{campaign.pk}/uploads/{upload.pk}/").content.decode()
    table = page[page.index('id="issue-reasons"') :]
    table = table[: table.index("</table>")]
    assert "The phone number cell is empty." in table and f"{importer.REPORT_SAMPLE + 50:,}" in table
    assert "&lt;b&gt;call me&lt;/b&gt;" in table and "<b>call me" not in table

"""The staged dry run on PostgreSQL: rows checked once (in two processes when the sheet is big
enough) and reused by the import, which then checks nothing. The split threshold is lowered here
so small sheets exercise the two-process path."""

from __future__ import annotations

import csv
import io
import threading

import pytest
from django.db import connection, connections, transaction

from campaigns import importer, partitions, services
from campaigns.locks import LEAD_APPEND, lead_append_lock
from campaigns.models import DoNotCall, Lead, SheetUpload
from tests.campaigns.conftest import held_elsewhere, run_dry, upload_sheet
from tests.factories import make_campaign

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.usefixtures("postgres_only"),
]


def _sheet(rows: int, *, multiline_every: int = 7) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Name", "Phone", "City"])
    for i in range(rows):
        number = "12345" if i % 50 == 3 else f"+1212{200 + i // 10000}{i % 10000:04d}"
        city = 'Two\r\nlines, "quoted"' if i % multiline_every == 0 else "City"
        writer.writerow([f"Lead {i}", number, city])
    # Duplicates of rows in the head, placed in the tail: the first occurrence must win.
    writer.writerow(["Dup of 1", "+12122000001", "x"])
    writer.writerow(["Dup of 2", "(212) 200-0002", "y"])
    return out.getvalue().encode()


def _import(upload: SheetUpload) -> SheetUpload:
    services.upload_start_import(upload=upload)
    return services.upload_import_run(upload_id=upload.pk) or SheetUpload.objects.get(pk=upload.pk)


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"], ids=["utf-8", "utf-8 with BOM"])
def test_split_dry_run_matches_one_process_and_import_reuses_it(campaign, split_small, monkeypatch, bom):
    data = bom + _sheet(3000)
    # One process first: the reference figures and report.
    monkeypatch.setenv("AGENTDESK_IMPORT_SPLIT", "0")
    single = run_dry(upload_sheet(campaign, data))
    with open(importer.report_path(single), encoding="utf-8") as handle:
        single_report = sorted(tuple(r) for r in csv.reader(handle))
    monkeypatch.setenv("AGENTDESK_IMPORT_SPLIT", "1")
    upload = run_dry(upload_sheet(campaign, data))
    assert importer.split_point(__import__("pathlib").Path(upload.file.path), upload.encoding) is not None
    assert upload.report["stage"]["tables"] == [importer.stage_table(upload)]
    for field in ("total_rows", "valid_rows", "invalid_rows", "duplicate_rows"):
        assert getattr(upload, field) == getattr(single, field), field
    with open(importer.report_path(upload), encoding="utf-8") as handle:
        assert sorted(tuple(r) for r in csv.reader(handle)) == single_report
    duplicates = [i for i in upload.report["sample"] if i["kind"] == "duplicate"]
    assert {i["line"] for i in duplicates} == {
        max(i["line"] for i in upload.report["sample"]) - 1,
        max(i["line"] for i in upload.report["sample"]),
    }

    # The import checks nothing again: the sheet file could even be gone.
    def fail(*args, **kwargs):
        raise AssertionError("the import re-checked rows")

    monkeypatch.setattr(importer.rowcheck, "check_chunk", fail)
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 3000 - 60
    assert "stage" not in upload.report
    first = Lead.objects.get(number="+12122000001")
    assert first.name == "Lead 1"
    assert Lead.objects.get(number="+12122000000").custom_fields == {"City": 'Two\r\nlines, "quoted"'}
    # Lead ids follow the sheet's order, whichever process staged the row.
    names = list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("name", flat=True)[:5])
    assert names == ["Lead 0", "Lead 1", "Lead 2", "Lead 4", "Lead 5"]
    # Line numbers of the tail match the one-process pass (quoted newlines included).
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE %s", [f"campaigns_stage_{upload.pk}%"]
        )
        assert cur.fetchone()[0] == 0


def test_changed_mapping_or_new_dnc_is_honoured(campaign, split_small):
    data = _sheet(1000)
    upload = run_dry(upload_sheet(campaign, data))
    assert upload.report.get("stage")
    DoNotCall.objects.create(number="+12122000005", reason="added after the dry run")
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert not Lead.objects.filter(number="+12122000005").exists()
    assert upload.imported_rows == 1000 - 20 - 1

    # A mapping changed after the dry run: the fingerprint differs, so the import checks again.
    other = run_dry(upload_sheet(campaign, data, name="again.csv"))
    SheetUpload.objects.filter(pk=other.pk).update(
        mapping={**other.mapping, "columns": ["", "number", ""]}, status=SheetUpload.Status.VALIDATED
    )
    other = SheetUpload.objects.get(pk=other.pk)
    assert importer._reusable_stage(other, importer.plan_for(other)[0]) is None
    other = _import(other)
    assert other.status == SheetUpload.Status.DONE, other.error
    assert other.imported_rows == 0  # all already there


def test_lost_stage_falls_back_to_checking(campaign, split_small):
    upload = run_dry(upload_sheet(campaign, _sheet(500)))
    with connection.cursor() as cur:
        cur.execute(f"TRUNCATE {importer.stage_table(upload)}")  # as after a crash (UNLOGGED)
    before = Lead.objects.create(campaign=make_campaign(name="Other"), number="+13125550100")
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 500 - 10
    # Checked again, with ids reserved again: after every id drawn before, in sheet order.
    leads = list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("id", "name"))
    assert leads[0][0] > before.pk
    assert [name for _, name in leads] == sorted((n for _, n in leads), key=lambda n: int(n.split()[1]))


def test_a_wrong_split_guess_is_caught(campaign, split_small, caplog):
    # An unquoted field with a stray quote character makes the quote-parity guess wrong.
    rows = ["Name,Phone\n", 'He said "hi,2125550134\n']
    rows += [f"Lead {i},+1212300{i:04d}\n" for i in range(400)]
    rows += ['"Quoted\nname",+12124000000\n']
    rows += [f"Tail {i},+1212500{i:04d}\n" for i in range(400)]
    data = "".join(rows).encode()
    upload = run_dry(upload_sheet(campaign, data))
    assert upload.status == SheetUpload.Status.VALIDATED, upload.error
    assert "was inside a record" in caplog.text  # the guess was wrong, and noticed
    assert upload.valid_rows == 802
    assert upload.invalid_rows == 0
    upload = _import(upload)
    assert upload.imported_rows == 802
    assert Lead.objects.get(number="+12125550134").name == 'He said "hi'
    assert Lead.objects.get(number="+12124000000").name == "Quoted\nname"


def test_cancel_after_a_staged_dry_run_adds_nothing_and_sweeps(campaign, split_small):
    upload = run_dry(upload_sheet(campaign, _sheet(500)))
    services.upload_start_import(upload=upload)
    services.upload_cancel(upload=upload)
    assert services.upload_import_run(upload_id=upload.pk) is None
    assert Lead.objects.count() == 0
    run_dry(upload_sheet(campaign, _sheet(10)))  # any later dry run sweeps the cancelled stage
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", [importer.stage_table(upload)])
        assert cur.fetchone()[0] is None


def _staged_numbers(upload: SheetUpload) -> list[str]:
    with connection.cursor() as cur:
        tables = upload.report["stage"]["tables"]
        cur.execute(" UNION ALL ".join(f"SELECT number FROM {t}" for t in tables))
        return [row[0] for row in cur.fetchall()]


def test_the_dry_run_prunes_its_duplicates_so_the_import_inserts_without_on_conflict(
    campaign, split_small, monkeypatch
):
    Lead.objects.create(campaign=campaign, number="+12122000007", name="Already here")
    upload = run_dry(upload_sheet(campaign, _sheet(1000)))
    numbers = _staged_numbers(upload)
    # Exactly the rows the import will add: no in-sheet repeat (head or tail), no campaign number.
    assert len(numbers) == len(set(numbers)) == upload.report["stage"]["rows"] == 1000 - 20 - 1
    assert "+12122000007" not in numbers and "+12122000001" in numbers

    statements = []

    def record(execute, sql, params, many, context):
        statements.append(sql)
        return execute(sql, params, many, context)

    copies = []
    real_copy_in = importer._PostgresStage._copy_in

    def copy_in(stage, cur, columns, select, params, guard, progress):
        copies.append(guard)
        return real_copy_in(stage, cur, columns, select, params, guard, progress)

    monkeypatch.setattr(importer._PostgresStage, "_copy_in", copy_in)
    with connection.execute_wrapper(record):
        upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 1000 - 20 - 1
    # One plain COPY, no campaign filter (nothing arrived since the dry run), no ON CONFLICT.
    assert copies == [None]
    assert not any(
        s.startswith("INSERT INTO campaigns_lead ") for s in statements
    )  # (its counter: one upsert)
    assert any("pg_advisory_xact_lock" in s for s in statements)
    assert Lead.objects.get(number="+12122000001").name == "Lead 1"


def test_numbers_that_arrive_between_dry_run_and_import_are_skipped_not_fatal(campaign, split_small):
    upload = run_dry(upload_sheet(campaign, _sheet(1000)))
    # A CRM appends two of the sheet's numbers through the intake API after the dry run.
    body = {"customerData": {"jsonData": [{"number": "+12122000004"}, {"number": "+12122000900"}]}}
    assert services.intake_append(campaign=campaign, body=body).appended == 2
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 1000 - 20 - 2
    assert Lead.objects.filter(campaign=campaign, number="+12122000004").count() == 1
    assert Lead.objects.get(campaign=campaign, number="+12122000004").source == Lead.Source.INTAKE
    assert Lead.objects.filter(campaign=campaign).count() == 1000 - 20


def test_the_append_lock_serializes_writers_of_one_campaign_only(campaign):
    other = make_campaign(name="Other")
    held, release, results = threading.Event(), threading.Event(), {}

    def holder():
        with transaction.atomic():
            lead_append_lock(campaign.pk)
            held.set()
            release.wait(10)
        connections.close_all()

    def contender(key, campaign_id):
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s, %s)", [LEAD_APPEND, campaign_id])
            results[key] = cur.fetchone()[0]
        connections.close_all()

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(10)
    for key, campaign_id in (("same", campaign.pk), ("other", other.pk)):
        worker = threading.Thread(target=contender, args=(key, campaign_id))
        worker.start()
        worker.join(10)
    release.set()
    thread.join(10)
    assert results == {"same": False, "other": True}


def test_the_staged_insert_moves_the_progress_bar_and_keeps_sheet_order(campaign, split_small, monkeypatch):
    monkeypatch.setattr(importer, "INSERT_CHUNKS", 4)
    # A campaign with leads already: the rows are copied in, piece by piece.
    Lead.objects.create(campaign=campaign, number="+13125550100", name="Lead -1")
    upload = run_dry(upload_sheet(campaign, _sheet(3000)))
    assert upload.report["stage"]["built"] is False
    services.upload_start_import(upload=upload)
    seen: list[float] = []
    outcome = importer.commit(
        SheetUpload.objects.get(pk=upload.pk), progress=lambda f, rows, step=None: seen.append(f)
    )
    assert outcome.imported == 3000 - 60
    inserting = [f for f in seen if f > 0.5]
    assert len(inserting) >= 3 and inserting == sorted(inserting) and inserting[-1] == 1.0, seen
    # Two processes staged the rows into one table; lead ids follow the sheet.
    names = list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("name", flat=True))
    assert names == sorted(names, key=lambda n: int(n.split()[1]))


@pytest.mark.parametrize("built", [True, False], ids=["own partition", "copied in"])
def test_a_cancel_during_the_insert_answers_at_once_and_rolls_the_import_back(
    campaign, split_small, monkeypatch, built
):
    monkeypatch.setattr(importer, "INSERT_CHUNKS", 4)
    if not built:  # a platform lead of the campaign: the sheet's rows are copied in
        Lead.objects.create(campaign=campaign, number="+13125550100", source=Lead.Source.PLATFORM)
    upload = run_dry(upload_sheet(campaign, _sheet(3000)))
    assert upload.report["stage"]["built"] is built
    services.upload_start_import(upload=upload)
    real_reporter = services._progress_reporter
    answered: dict[str, object] = {}

    def cancel_from_another_connection():
        try:
            answered["upload"] = services.upload_cancel(upload=upload)
        finally:
            connections.close_all()

    def reporter(upload_, phase):
        progress, cancelled = real_reporter(upload_, phase)

        def progress_and_cancel(fraction, rows, step=None):
            progress(fraction, rows, step)
            if fraction > 0.5 and "upload" not in answered:
                # The import's transaction holds the upload row: the cancel must not wait for it.
                supervisor = threading.Thread(target=cancel_from_another_connection)
                supervisor.start()
                supervisor.join(10)
                assert not supervisor.is_alive(), "the cancel waited for the inserting import"

        return progress_and_cancel, cancelled

    monkeypatch.setattr(services, "_progress_reporter", reporter)
    result = services.upload_import_run(upload_id=upload.pk)
    assert answered["upload"].status == SheetUpload.Status.IMPORTING  # asked, not yet taken
    assert result.status == SheetUpload.Status.CANCELLED
    assert SheetUpload.objects.get(pk=upload.pk).status == SheetUpload.Status.CANCELLED
    # The rows already in rolled back (and the partition, attached or half built, with them).
    assert not Lead.objects.filter(campaign=campaign).exclude(source=Lead.Source.PLATFORM).exists()
    with connection.cursor() as cur:  # the campaign's own partition, half built, went with them
        cur.execute("SELECT to_regclass(%s)", [partitions.table_for(campaign.pk)])
        assert cur.fetchone()[0] is None


def test_a_dry_run_that_cannot_reserve_ids_says_so_and_the_next_one_works(campaign, split_small, monkeypatch):
    """Reserving the sheet's ids waits for transactions that drew a lead id; a bounded wait,
    then a clear failure, never a stall of every lead insert behind it."""
    monkeypatch.setattr(importer, "RESERVE_LOCK_TIMEOUT", "200ms")
    busy = make_campaign(name="Busy")
    with held_elsewhere(lambda: Lead.objects.create(campaign=busy, number="+13125550100")):
        upload = run_dry(upload_sheet(campaign, _sheet(300)))
        assert upload.status == SheetUpload.Status.FAILED
        assert "Lead ids could not be reserved" in upload.error
    upload = run_dry(upload_sheet(campaign, _sheet(300), name="again.csv"))
    assert upload.status == SheetUpload.Status.VALIDATED, upload.error
    assert _import(upload).imported_rows == 300 - 6

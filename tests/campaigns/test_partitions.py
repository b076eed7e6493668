"""A big sheet into a campaign with no lead yet becomes that campaign's own partition of
``campaigns_lead`` (PostgreSQL, ``campaigns.partitions``): built, indexed by sorting, attached.
Every guarantee of the ordinary insert must hold, and whenever the attach cannot happen the rows
go in the ordinary way instead."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from campaigns import importer, partitions
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import held_elsewhere, run_dry, upload_sheet
from tests.campaigns.test_staged_import import _import, _sheet
from tests.factories import make_campaign

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.usefixtures("postgres_only"),
]

ROWS = 3000
IMPORTED = ROWS - 60  # _sheet: every 50th number invalid, two duplicates at the end


def _one(sql: str, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        row = cur.fetchone()
    return row[0] if row else None


def _bound(campaign) -> str | None:
    """The partition bound of the campaign's own table, if it is attached."""
    return _one(
        "SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid"
        " WHERE c.relname = %s AND i.inhparent = 'campaigns_lead'::regclass",
        [partitions.table_for(campaign.pk)],
    )


def _in_default(campaign) -> int:
    return _one("SELECT count(*) FROM campaigns_lead_default WHERE campaign_id = %s", [campaign.pk])


def test_a_big_sheet_into_a_new_campaign_becomes_its_own_indexed_partition(campaign, split_small):
    other = make_campaign(name="Other")
    Lead.objects.create(campaign=other, number="+12122000001", name="Someone else's")

    upload = _import(run_dry(upload_sheet(campaign, _sheet(ROWS))))

    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == IMPORTED
    assert _bound(campaign) == f"FOR VALUES IN ('{campaign.pk}')"
    table = partitions.table_for(campaign.pk)
    assert _one(f"SELECT count(*) FROM {table}") == IMPORTED
    assert _in_default(campaign) == 0 and _in_default(other) == 1
    # Every index of campaigns_lead has its built twin on the partition, attached to it.
    parent_indexes = _one("SELECT count(*) FROM pg_index WHERE indrelid = 'campaigns_lead'::regclass")
    attached = _one(
        "SELECT count(*) FROM pg_index x JOIN pg_inherits i ON i.inhrelid = x.indexrelid"
        " WHERE x.indrelid = %s::regclass",
        [table],
    )
    assert attached == parent_indexes == 4
    # And its own primary key on id, as the DEFAULT partition has (the parent has none).
    assert (
        _one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p'",
            [table],
        )
        == "PRIMARY KEY (id)"
    )
    # Built by the dry run as its stage, renamed at the attach: nothing keeps the stage's name.
    names = _one(
        "SELECT array_agg(name) FROM (SELECT c.relname AS name FROM pg_index i JOIN pg_class c"
        " ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass UNION ALL SELECT conname"
        " FROM pg_constraint WHERE conrelid = %s::regclass) n",
        [table, table],
    )
    assert not [n for n in names if n.startswith("campaigns_stage")], names
    assert {f"{table}_pkey", f"{table}_campaign"} <= set(names), names
    assert _one("SELECT count(*) FROM pg_attrdef WHERE adrelid = %s::regclass", [table]) == 0
    # Ids follow the sheet, and come from the one sequence: new leads elsewhere never collide.
    names = list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("name", flat=True))
    assert names == sorted(names, key=lambda n: int(n.split()[1]))
    later = Lead.objects.create(campaign=other, number="+12125550199")
    assert later.pk > Lead.objects.filter(campaign=campaign).order_by("-id").first().pk
    # The number stays unique within the campaign, across the built table.
    with pytest.raises(IntegrityError), transaction.atomic():
        Lead.objects.create(campaign=campaign, number="+12122000005")
    assert Lead.objects.get(campaign=campaign, number="+12122000005").name == "Lead 5"
    # The desk's lookups and row locks find leads there like anywhere else.
    lead = Lead.objects.filter(campaign=campaign).order_by("id").first()
    with transaction.atomic():
        assert Lead.objects.select_for_update().get(pk=lead.pk).name == "Lead 0"

    # A second sheet for the same campaign appends to its partition the ordinary way.
    more = b"Name,Phone\r\nNew one,+13125550100\r\nRepeat,+12122000005\r\n"
    second = _import(run_dry(upload_sheet(campaign, more, name="more.csv")))
    assert second.status == SheetUpload.Status.DONE, second.error
    assert second.imported_rows == 1
    assert _one(f"SELECT count(*) FROM {table}") == IMPORTED + 1


def test_a_lead_that_reaches_the_default_partition_meanwhile_sends_the_rows_the_ordinary_way(
    campaign, split_small, monkeypatch, caplog
):
    """Platform offers do not take the append lock: one may land after the importer chose to
    build. The attach then finds it in the DEFAULT partition, and nothing is lost."""
    upload = run_dry(upload_sheet(campaign, _sheet(ROWS)))
    real = partitions.can_build

    def can_build(cur, campaign_id):
        chosen = real(cur, campaign_id)
        if not Lead.objects.filter(campaign=campaign).exists():  # asked again after the fallback
            Lead.objects.create(campaign=campaign, number="+13125550123", source=Lead.Source.PLATFORM)
        return chosen

    monkeypatch.setattr(partitions, "can_build", can_build)
    upload = _import(upload)

    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == IMPORTED
    assert _bound(campaign) is None
    assert _one("SELECT to_regclass(%s)", [partitions.table_for(campaign.pk)]) is None
    assert _in_default(campaign) == IMPORTED + 1
    assert "no partition of its own" in caplog.text


def test_a_busy_default_partition_does_not_hold_the_import(campaign, split_small, monkeypatch):
    """The attach waits a bounded time for its moment on the DEFAULT partition (a long export
    of another campaign, say), then inserts the ordinary way rather than stall every desk."""
    monkeypatch.setattr(partitions, "ATTACH_LOCK_TIMEOUT", "200ms")
    upload = run_dry(upload_sheet(campaign, _sheet(ROWS)))

    def long_read():
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM campaigns_lead_default")

    with held_elsewhere(long_read):
        upload = _import(upload)

    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == IMPORTED
    assert _bound(campaign) is None
    assert _in_default(campaign) == IMPORTED


def test_a_deleted_campaign_leaves_an_empty_partition_that_the_sweep_drops(campaign, split_small):
    upload = _import(run_dry(upload_sheet(campaign, _sheet(ROWS))))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    table = partitions.table_for(campaign.pk)
    campaign.delete()
    assert not Lead.objects.exists()
    assert _one("SELECT to_regclass(%s)", [table]) is not None
    partitions.sweep()
    assert _one("SELECT to_regclass(%s)", [table]) is None


def test_a_small_sheet_keeps_to_the_default_partition(campaign):
    upload = _import(run_dry(upload_sheet(campaign, _sheet(200))))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert _bound(campaign) is None and _in_default(campaign) == 200 - 4  # 4 invalid numbers


def test_a_big_file_with_few_good_rows_does_not_get_a_partition(campaign, split_small, monkeypatch):
    """The dry run stages a big file as the partition to be; if invalid rows and duplicates
    leave only a few leads, the import puts them in the DEFAULT partition instead."""
    rows = ["Name,Phone,Note\r\n"] + [f"Bad {i},12345,{'x' * 40}\r\n" for i in range(3000)]
    rows += [f"Good {i},+1212555{i:04d},ok\r\n" for i in range(5)]
    data = "".join(rows).encode()
    monkeypatch.setattr(importer, "COPY_MIN_BYTES", len(data) // 2)
    upload = run_dry(upload_sheet(campaign, data))
    assert upload.report["stage"]["built"] is True
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert upload.imported_rows == 5
    assert _bound(campaign) is None
    assert _in_default(campaign) == 5


def test_every_step_of_a_partition_build_has_its_place_in_the_build_order():
    """The two index lanes run the steps longest first (partitions.BUILD_ORDER, by measurement):
    an index of campaigns_lead missing from the order would run in its middle, a guess."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'campaigns_lead'::regclass"
        )
        names = {name for (name,) in cur.fetchall()}
        steps, primary_key = partitions._build_steps(cur, "campaigns_stage_x")
    assert names | {"pkey", "ANALYZE"} == set(partitions.BUILD_ORDER) | set(partitions.BUILT_EMPTY)
    assert [name for name, _ in steps] == [*partitions.BUILT_EMPTY, *partitions.BUILD_ORDER]
    first = steps[len(partitions.BUILT_EMPTY)][1]
    assert first.startswith("CREATE UNIQUE INDEX campaigns_stage_x_") and "(campaign_id, number)" in first
    assert primary_key.endswith("PRIMARY KEY USING INDEX campaigns_stage_x_pkey")


def test_a_partition_to_be_has_its_lease_index_before_its_rows(campaign, split_small, monkeypatch):
    """The lease index, which no fresh lead enters, is made with the empty stage; the builds
    after the rows leave it out, and the attached partition has it under its own name."""
    data = _sheet(ROWS)
    seen: list[tuple[list[str], list[str]]] = []
    real = partitions.index

    def index(table, progress, *, connect):
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = %s::regclass", [table]
            )
            seen.append(([d for (d,) in cur.fetchall()], partitions._after_rows(cur, table)[0]))
        return real(table, progress, connect=connect)

    monkeypatch.setattr(importer, "COPY_MIN_BYTES", len(data) // 2)
    monkeypatch.setattr(partitions, "index", index)
    upload = run_dry(upload_sheet(campaign, data))
    assert upload.report["stage"]["built"] is True
    [(before_rows, after_rows)] = seen
    lease = "WHERE (lease_owner_id IS NOT NULL)"
    assert len(before_rows) == 1 and lease in before_rows[0]
    assert not any(lease in statement for statement in after_rows)
    upload = _import(upload)
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert _bound(campaign) is not None
    definitions = _one(
        "SELECT array_agg(indexdef) FROM pg_indexes WHERE tablename = %s", [partitions.table_for(campaign.pk)]
    )
    assert sum(lease in d for d in definitions) == 1


def test_numbers_sort_in_the_c_collation_everywhere_they_are_compared(campaign, split_small, monkeypatch):
    """Migration 0008: leads (the parent, the DEFAULT partition, a campaign's own partition made
    from its stage) and the do-not-call list hold numbers in "C", so they compare with each other
    and the number index sorts bytewise."""
    data = _sheet(ROWS)
    monkeypatch.setattr(importer, "COPY_MIN_BYTES", len(data) // 2)
    upload = run_dry(upload_sheet(campaign, data))
    assert upload.report["stage"]["built"] is True
    _import(upload)
    for table in (
        "campaigns_lead",
        partitions.DEFAULT,
        "campaigns_donotcall",
        partitions.table_for(campaign.pk),
    ):
        assert (
            _one(
                "SELECT collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation"
                " WHERE a.attrelid = %s::regclass AND a.attname = 'number'",
                [table],
            )
            == "C"
        ), table

"""The campaigns page and the wallboard read lead counts from counters the database keeps
(``LeadCount``, campaigns migration 0017), not from a scan of millions of leads. Whatever writes
leads (the ORM one at a time or in bulk, a status change, a move, a delete, an import in rows or
as a whole partition, an undo, a deleted campaign), the counters must equal a count of the leads
themselves, and the supervisor's dashboard must show them."""

from __future__ import annotations

import psycopg
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Count
from django.urls import reverse

from campaigns import importer, partitions, services
from campaigns.models import Campaign, Lead, LeadCount, SheetUpload
from campaigns.selectors import campaign_counts, campaign_list
from tests.campaigns.conftest import run_dry, upload_sheet
from tests.campaigns.test_staged_import import _import, _sheet
from tests.factories import make_campaign, make_leads

pytestmark = pytest.mark.django_db(transaction=True)


def _counted(campaign: Campaign) -> dict[str, int]:
    """What a scan of the leads says, every status (0 when none) and the total."""
    counts = dict.fromkeys(Lead.Status.values, 0)
    for row in Lead.objects.filter(campaign=campaign).values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    counts["total"] = sum(counts.values())
    return counts


def _agree(*campaigns: Campaign) -> None:
    for campaign in campaigns:
        assert campaign_counts(campaign) == _counted(campaign), campaign.name
        row = campaign_list().get(pk=campaign.pk)
        scan = _counted(campaign)
        assert (row.lead_total, row.lead_pending, row.lead_callback, row.lead_done, row.lead_dnc) == (
            scan["total"],
            scan["pending"],
            scan["callback"],
            scan["done"] + scan["exhausted"],
            scan["dnc"],
        )


def test_every_way_a_lead_is_written_keeps_the_counts_exact():
    spring, autumn = make_campaign(name="Spring"), make_campaign(name="Autumn")
    leads = make_leads(spring, 6)
    Lead.objects.bulk_create(
        [Lead(campaign=autumn, number=f"+1312555{i:04d}", timezone="America/Chicago") for i in range(5)]
    )
    _agree(spring, autumn)

    # One save and a bulk update that change statuses; a lease that changes none.
    leads[0].status = Lead.Status.DONE
    leads[0].save()
    Lead.objects.filter(pk__in=[leads[1].pk, leads[2].pk]).update(status=Lead.Status.CALLBACK)
    Lead.objects.filter(campaign=autumn).update(status=Lead.Status.DNC)
    Lead.objects.filter(pk=leads[3].pk).update(attempts=2, name="Renamed")
    _agree(spring, autumn)

    # A lead moved to the other campaign, one deleted, one updated to the status it had.
    Lead.objects.filter(pk=leads[4].pk).update(campaign=autumn, status=Lead.Status.EXHAUSTED)
    leads[5].delete()
    Lead.objects.filter(pk=leads[1].pk).update(status=Lead.Status.CALLBACK)
    _agree(spring, autumn)
    assert campaign_counts(spring)["total"] == 4 and campaign_counts(autumn)["total"] == 6


def test_a_deleted_campaign_takes_its_counters_with_it():
    spring, autumn = make_campaign(name="Spring"), make_campaign(name="Autumn")
    make_leads(spring, 3)
    make_leads(autumn, 2)
    spring.delete()
    assert not LeadCount.objects.filter(campaign_id=spring.pk).exists()
    _agree(autumn)


def test_the_dashboard_shows_the_counters(supervisor_client, campaign):
    first, *_, last = make_leads(campaign, 4)
    Lead.objects.filter(pk=first.pk).update(status=Lead.Status.DONE)
    Lead.objects.filter(pk=last.pk).update(status=Lead.Status.DNC)
    page = supervisor_client.get(reverse("supervisor:dashboard")).content.decode()
    row = page[page.index(f'id="campaign-row-{campaign.pk}"') :]
    row = row[: row.index("</tr>")]
    cells = [c.split("</td>")[0].strip() for c in row.split('<td class="num">')[1:]]
    assert cells[:5] == ["4", "2", "0", "1", "1"], cells


def test_an_import_and_its_undo_keep_the_counts_exact(supervisor_client, campaign):
    upload = _import(run_dry(upload_sheet(campaign, _sheet(300))))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    _agree(campaign)
    assert campaign_counts(campaign)["pending"] == upload.imported_rows > 0

    supervisor_client.post(reverse("supervisor:upload_undo", args=[campaign.pk, upload.pk]))
    services.upload_undo_run(upload_id=upload.pk)
    assert SheetUpload.objects.get(pk=upload.pk).status == SheetUpload.Status.UNDONE
    _agree(campaign)
    assert campaign_counts(campaign)["total"] == 0


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_only")
def test_a_sheet_attached_as_its_own_partition_is_counted(campaign, split_small):
    """A big sheet into a new campaign arrives by ATTACH PARTITION, which fires no trigger."""
    upload = _import(run_dry(upload_sheet(campaign, _sheet(3000))))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [partitions.table_for(campaign.pk)])
        assert cur.fetchone()[0], "the sheet did not become a partition"
    _agree(campaign)
    assert campaign_counts(campaign)["total"] == upload.imported_rows
    # And rows written into it afterwards go through the parent's triggers.
    first = list(Lead.objects.filter(campaign=campaign).order_by("id").values_list("id", flat=True)[:10])
    Lead.objects.filter(pk__in=first).update(status=Lead.Status.DONE)
    _agree(campaign)


@pytest.mark.postgres
@pytest.mark.usefixtures("postgres_only")
def test_an_import_into_a_worked_campaign_never_holds_its_dispositions(campaign, split_small, monkeypatch):
    """A sheet appended to a campaign agents are working inserts for seconds in one transaction;
    a disposition in the campaign meanwhile (its own connection, as another agent's request)
    must not wait for that transaction's counters."""
    worked = make_leads(campaign, 2)
    probes = []
    copy_in = importer._PostgresStage._copy_in

    def copy_then_dispose(self, *args, **kwargs):
        moved = copy_in(self, *args, **kwargs)
        db = connection.settings_dict
        with psycopg.connect(
            dbname=db["NAME"], user=db["USER"], host=db["HOST"], port=db["PORT"] or 5432, autocommit=True
        ) as other:
            other.execute("SET lock_timeout = '2s'")
            other.execute("UPDATE campaigns_lead SET status = 'done' WHERE id = %s", [worked[0].pk])
        probes.append(moved)
        return moved

    monkeypatch.setattr(importer._PostgresStage, "_copy_in", copy_then_dispose)
    upload = _import(run_dry(upload_sheet(campaign, _sheet(500))))
    assert upload.status == SheetUpload.Status.DONE, upload.error
    assert probes, "the import did not take the COPY path"
    _agree(campaign)
    assert campaign_counts(campaign)["done"] == 1
    assert campaign_counts(campaign)["pending"] == 1 + upload.imported_rows


def test_a_number_put_on_do_not_call_moves_the_counts_of_every_campaign_it_is_in():
    spring, autumn = make_campaign(name="Spring"), make_campaign(name="Autumn")
    first = make_leads(spring, 3)
    make_leads(autumn, 3)  # the same three numbers
    Lead.objects.filter(campaign=autumn, number=first[0].number).update(status=Lead.Status.CALLBACK)
    services.dnc_add(number=first[0].number, reason="asked")
    services.dnc_import(file=SimpleUploadedFile("dnc.csv", f"{first[1].number}\n".encode()), reason="list")
    _agree(spring, autumn)
    assert campaign_counts(spring)["dnc"] == campaign_counts(autumn)["dnc"] == 2
    assert campaign_counts(autumn)["callback"] == 0

"""The lead -> campaign reference, kept by triggers instead of a FOREIGN KEY (migration 0005):
checked once per INSERT statement on PostgreSQL, so big imports skip a million per-row checks,
but no lead may name a campaign that does not exist. And the call -> lead reference (calls
migration 0004). On both databases."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction

from calls.models import Call
from campaigns.models import Campaign, Lead
from tests.factories import make_call, make_campaign, make_user_agent

pytestmark = pytest.mark.django_db(transaction=True)
REFUSED = r"campaign reference|campaign does not exist"


def _missing_campaign_id() -> int:
    return (Campaign.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000


def test_a_lead_for_a_missing_campaign_is_refused():
    with pytest.raises(IntegrityError, match=REFUSED), transaction.atomic():
        Lead.objects.create(campaign_id=_missing_campaign_id(), number="+12125550100")
    assert not Lead.objects.exists()


def test_one_bad_row_refuses_the_whole_multi_row_insert():
    campaign = make_campaign(name="Real")
    rows = [
        Lead(campaign=campaign, number="+12125550101"),
        Lead(campaign_id=_missing_campaign_id(), number="+12125550102"),
    ]
    with pytest.raises(IntegrityError, match=REFUSED), transaction.atomic():
        Lead.objects.bulk_create(rows)
    assert not Lead.objects.exists()
    Lead.objects.bulk_create(rows[:1], ignore_conflicts=True)  # the good row alone goes in
    assert Lead.objects.count() == 1


def test_moving_a_lead_to_a_missing_campaign_is_refused():
    lead = Lead.objects.create(campaign=make_campaign(name="Real"), number="+12125550103")
    with pytest.raises(IntegrityError, match=REFUSED), transaction.atomic():
        Lead.objects.filter(pk=lead.pk).update(campaign_id=_missing_campaign_id())
    other = make_campaign(name="Other")
    Lead.objects.filter(pk=lead.pk).update(campaign_id=other.pk)
    assert Lead.objects.get(pk=lead.pk).campaign == other


def test_deleting_a_campaign_through_django_deletes_its_leads():
    campaign = make_campaign(name="Gone")
    Lead.objects.bulk_create([Lead(campaign=campaign, number=f"+1212555{i:04d}") for i in range(5)])
    campaign.delete()
    assert not Lead.objects.exists()


def test_a_bare_delete_never_leaves_leads_without_their_campaign():
    campaign = make_campaign(name="Raw")
    Lead.objects.create(campaign=campaign, number="+12125550104")
    # Only the lead refers to it now (dispositions have foreign keys of their own).
    campaign.dispositions.all().delete()
    campaign.agents.clear()
    if connection.vendor == "postgresql":
        # Refused at COMMIT, like the deferred foreign key it replaces.
        with pytest.raises(IntegrityError, match=REFUSED), transaction.atomic(), connection.cursor() as cur:
            cur.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
        assert Lead.objects.filter(campaign=campaign).count() == 1
    else:
        # SQLite cascades instead (so a flush may empty the tables in any order).
        with connection.cursor() as cur:
            cur.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
        assert not Lead.objects.exists()


def test_an_open_insert_holds_its_campaign_against_a_concurrent_delete():
    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL (SQLite has one writer at a time)")
    campaign = make_campaign(name="Busy")
    inserted, release, outcome = threading.Event(), threading.Event(), {}

    def importer():
        with transaction.atomic():
            Lead.objects.create(campaign=campaign, number="+12125550105")
            inserted.set()
            release.wait(10)
        connections.close_all()

    def deleter():
        try:
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("SET LOCAL lock_timeout = '300ms'")
                cur.execute("DELETE FROM campaigns_campaign WHERE id = %s", [campaign.pk])
            outcome["deleted"] = True
        except OperationalError as exc:
            outcome["error"] = str(exc)
        finally:
            connections.close_all()

    first = threading.Thread(target=importer)
    first.start()
    assert inserted.wait(10)
    second = threading.Thread(target=deleter)
    second.start()
    second.join(10)
    release.set()
    first.join(10)
    assert "lock timeout" in outcome.get("error", ""), outcome
    assert Lead.objects.filter(campaign=campaign).count() == 1


# -- the call -> lead reference (calls migration 0004): triggers, since campaigns_lead is
# partitioned by campaign on PostgreSQL and a foreign key can no longer name its id alone.

LEAD_REFUSED = r"lead reference|lead does not exist"


def _call_on_a_lead():
    campaign = make_campaign(name="Calls")
    lead = Lead.objects.create(campaign=campaign, number="+12125550106")
    return make_call(make_user_agent("agent", 1), lead), lead


def test_a_call_naming_a_missing_lead_is_refused():
    call, lead = _call_on_a_lead()
    missing = Lead.objects.order_by("-pk").values_list("pk", flat=True).first() + 1000
    with pytest.raises(IntegrityError, match=LEAD_REFUSED), transaction.atomic():
        Call.objects.filter(pk=call.pk).update(lead_id=missing)
    assert Call.objects.get(pk=call.pk).lead_id == lead.pk
    with pytest.raises(IntegrityError, match=LEAD_REFUSED), transaction.atomic():
        Call.objects.create(lead_id=missing, campaign=call.campaign, agent=call.agent, account=call.account)
    assert Call.objects.count() == 1


def test_deleting_a_lead_through_django_deletes_its_calls():
    call, lead = _call_on_a_lead()
    lead.delete()
    assert not Call.objects.filter(pk=call.pk).exists()


def test_a_bare_delete_never_leaves_calls_without_their_lead():
    call, lead = _call_on_a_lead()
    if connection.vendor == "postgresql":
        with (
            pytest.raises(IntegrityError, match=LEAD_REFUSED),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute("DELETE FROM campaigns_lead WHERE id = %s", [lead.pk])
        assert Lead.objects.filter(pk=lead.pk).exists() and Call.objects.filter(pk=call.pk).exists()
    else:
        with connection.cursor() as cur:
            cur.execute("DELETE FROM campaigns_lead WHERE id = %s", [lead.pk])
        assert not Call.objects.filter(pk=call.pk).exists()

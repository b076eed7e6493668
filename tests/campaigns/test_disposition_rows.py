"""The campaign form's dispositions as rows (a formset: name, outcome, retry minutes, key,
conversion, a place number and a Remove box), posted the way a browser without JavaScript does:
add, reorder, remove, rename; errors in words on their row with everything typed kept; and the
desk showing the rows in that order with their keys."""

from __future__ import annotations

import re

from django.urls import reverse

from calls.models import CallState
from campaigns.models import Disposition, desk_keys
from tests.campaigns.test_campaign_pages import form_data
from tests.factories import disposition_rows, make_call, make_leads


def saved(campaign) -> list[tuple]:
    return [(d.name, d.outcome, d.retry_delay_minutes, d.key) for d in campaign.dispositions.all()]


def existing_rows(campaign) -> list[dict]:
    """The rows as the edit page shows them (id, name, outcome, place)."""
    return [
        {"id": d.pk, "name": d.name, "outcome": d.outcome, "retry_delay_minutes": d.retry_delay_minutes}
        for d in campaign.dispositions.all()
    ]


def row_errors(page: str) -> dict[int, str]:
    """Each shown row's index (in the order shown) and the words of its errors."""
    rows = page.split('<template id="disp-empty">')[0].split("data-disp-row>")[1:]
    found = {}
    for row in rows:
        index = int(re.search(r'name="disp-(\d+)-name"', row).group(1))
        errors = re.search(r'<div class="disp-errors">(.*?)</div>', row, re.S)
        found[index] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", errors.group(1))) if errors else ""
    return found


def edit(client, campaign, *rows, initial: int):
    url = reverse("supervisor:campaign_edit", args=[campaign.pk])
    return client.post(url, form_data(campaign, **disposition_rows(*rows, initial=initial)))


def test_an_existing_campaign_shows_its_dispositions_as_rows_in_order(supervisor_client, campaign):
    page = supervisor_client.get(reverse("supervisor:campaign_edit", args=[campaign.pk])).content.decode()
    names = re.findall(r'name="disp-(\d+)-name"[^>]*value="([^"]*)"', page)
    assert [name for _, name in names] == ["Interested", "No answer", "Call back", "Do not call"]
    # Two empty rows to type into without JavaScript, and the row the script copies.
    assert 'name="disp-TOTAL_FORMS" value="6"' in page and 'name="disp-INITIAL_FORMS" value="4"' in page
    assert '<template id="disp-empty">' in page and 'name="disp-__prefix__-name"' in page
    assert re.search(r'<select name="disp-1-outcome"[^>]*>.*?<option value="retry" selected>', page, re.S)
    # No key set: the key field shows, greyed, the digit the desk gives by place.
    keys = re.findall(r'<input type="text" name="disp-\d-key"[^>]*placeholder="(\d)"', page)
    assert keys == ["1", "2", "3", "4"]


def test_rows_added_reordered_and_removed_are_saved_in_that_order(supervisor_client, campaign):
    before = {d.name: d.pk for d in campaign.dispositions.all()}
    interested, no_answer, call_back, dnc = existing_rows(campaign)
    answer = edit(
        supervisor_client,
        campaign,
        {**interested, "ORDER": 3},
        {**no_answer, "ORDER": 1, "retry_delay_minutes": 30, "key": "9"},
        {**call_back, "DELETE": True},
        {**dnc, "ORDER": 4},
        {"name": "Sale", "ORDER": 2, "is_conversion": True, "key": "0"},  # an extra row, filled
        {"ORDER": ""},  # an extra row left empty
        initial=4,
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    assert saved(campaign) == [
        ("No answer", "retry", 30, "9"),
        ("Sale", "final", None, "0"),
        ("Interested", "final", None, ""),
        ("Do not call", "dnc", None, ""),
    ]
    rows = {d.name: d for d in campaign.dispositions.all()}
    assert rows["No answer"].pk == before["No answer"] and rows["Sale"].is_conversion
    # The desk's keys: the ones set, then the free digits by place.
    assert desk_keys(d.key for d in campaign.dispositions.all()) == ["9", "0", "1", "2"]
    # Shown again in the saved order.
    page = supervisor_client.get(reverse("supervisor:campaign_edit", args=[campaign.pk])).content.decode()
    assert re.findall(r'name="disp-\d+-name"[^>]*value="([^"]*)"', page) == [
        "No answer",
        "Sale",
        "Interested",
        "Do not call",
    ]


def test_a_rename_keeps_the_row_and_its_calls(supervisor_client, campaign, agent):
    lead = make_leads(campaign, 1)[0]
    call = make_call(agent, lead, CallState.DISPOSED)
    call.disposition = campaign.dispositions.get(name="Interested")
    call.save(update_fields=["disposition"])
    rows = existing_rows(campaign)
    # Two rows swap names in one save.
    rows[0]["name"], rows[1]["name"] = "No answer", "Interested"
    rows[1]["outcome"] = "final"
    rows[0]["outcome"], rows[0]["retry_delay_minutes"] = "retry", 20
    assert edit(supervisor_client, campaign, *rows, initial=4).status_code == 302
    call.refresh_from_db()
    assert call.disposition.name == "No answer" and call.disposition.retry_delay_minutes == 20
    assert [d.name for d in campaign.dispositions.all()] == [
        "No answer",
        "Interested",
        "Call back",
        "Do not call",
    ]


def test_errors_are_said_on_their_row_and_nothing_typed_is_lost(supervisor_client, campaign):
    before = saved(campaign)
    interested, no_answer, call_back, dnc = existing_rows(campaign)
    answer = edit(
        supervisor_client,
        campaign,
        {**interested, "key": "5"},
        {**no_answer, "ORDER": 4, "retry_delay_minutes": 99999},
        {**call_back, "name": "interested"},  # the same name in other letters
        {**dnc, "ORDER": 3, "outcome": "maybe"},
        {"name": "Sale", "key": "5", "ORDER": 5},
        {"name": "Typo", "key": "x", "ORDER": 6},
        {"name": "", "outcome": "retry", "retry_delay_minutes": 5, "ORDER": 7},
        initial=4,
    )
    assert answer.status_code == 200
    page = answer.content.decode()
    assert saved(campaign) == before
    assert "A disposition row needs a look (below); nothing was saved." in page
    errors = row_errors(page)
    assert "Row 1 is already called “interested”." in errors[2]
    assert "Pick an outcome from the list (maybe is not one)." in errors[3]
    assert "Retry minutes: at most 10080 (a week)." in errors[1]
    assert "Key 5 already picks row 1." in errors[4]
    assert "The key is one digit, 0 to 9." in errors[5]
    assert "A disposition needs a name (or remove the row)." in errors[6]
    assert errors[0] == ""
    # In the supervisor's order (place numbers), with what they typed.
    assert list(errors) == [0, 2, 3, 1, 4, 5, 6]
    assert 'name="disp-1-retry_delay_minutes" value="99999"' in page
    assert re.search(r'name="disp-2-name" value="interested"', page)
    assert re.search(r'name="disp-6-retry_delay_minutes" value="5"', page)
    assert 'name="disp-TOTAL_FORMS" value="7"' in page


def test_a_removed_row_is_not_checked_and_a_tampered_count_is_refused(supervisor_client, campaign):
    rows = existing_rows(campaign)
    answer = edit(supervisor_client, campaign, *rows, {"name": "Gone", "key": "x", "DELETE": True}, initial=4)
    assert answer.status_code == 302
    assert "Gone" not in [d.name for d in campaign.dispositions.all()]
    data = form_data(campaign, **disposition_rows(*rows, initial=4))
    del data["disp-TOTAL_FORMS"]
    answer = supervisor_client.post(reverse("supervisor:campaign_edit", args=[campaign.pk]), data)
    assert answer.status_code == 200 and "ManagementForm data is missing" in answer.content.decode()
    assert campaign.dispositions.count() == 4


def test_an_id_from_another_campaign_makes_a_new_row(supervisor_client, campaign):
    from tests.factories import make_campaign

    other = make_campaign(name="Other")
    theirs = other.dispositions.first()
    answer = edit(supervisor_client, campaign, {"id": theirs.pk, "name": "Mine"}, initial=0)
    assert answer.status_code == 302
    assert [d.name for d in campaign.dispositions.all()] == ["Mine"]
    assert Disposition.objects.get(pk=theirs.pk).campaign == other


def test_the_desk_shows_the_rows_in_order_with_their_keys(supervisor_client, agent_client, campaign):
    rows = existing_rows(campaign)
    rows[3]["key"] = "1"
    assert edit(supervisor_client, campaign, rows[3], *rows[:3], initial=4).status_code == 302
    assert agent_client.post("/desk/campaign/", {"campaign": campaign.pk}).status_code == 200
    desk = agent_client.get("/desk/").content.decode()
    shown = re.findall(r'data-key="(\d)"[^>]*>\s*<kbd>\d</kbd>\s*<span class="disp-name">([^<]+)', desk)
    assert shown == [("1", "Do not call"), ("2", "Interested"), ("3", "No answer"), ("4", "Call back")]


def test_agents_and_anonymous_users_are_refused_on_the_campaign_form(agent_client, client, campaign):
    for url in (
        reverse("supervisor:campaign_new"),
        reverse("supervisor:campaign_edit", args=[campaign.pk]),
    ):
        assert agent_client.get(url).status_code == 403
        assert agent_client.post(url, form_data(campaign)).status_code == 403
        assert client.get(url)["Location"].startswith("/login/")
    assert campaign.dispositions.count() == 4

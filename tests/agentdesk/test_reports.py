"""Supervisors' reports: known calls, dispositions and presence spans over two days, two agents
and two campaigns, read by a supervisor in Sydney (UTC+11 in January), against figures worked out
by hand; the CSV equals the page and is formula-safe; agents and anonymous users are refused; a
wrong date is said in words; the wallboard counts the same way."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from agentdesk import reports, wallboard
from agentdesk.models import Presence, PresenceSpan
from calls.models import Call, CallState
from campaigns.models import Disposition
from tests.agentdesk.conftest import login
from tests.factories import make_call, make_campaign, make_leads, make_user_agent

URL = "/supervisor/reports/"
CSV_URL = "/supervisor/reports/report.csv"
SYDNEY = "Australia/Sydney"
FORMULA = "=cmd|' /C calc'!A0"  # a disposition a spreadsheet would run
# Sydney's 14 and 15 January 2025 (AEDT, UTC+11): 13:00 UTC the day before to 13:00 UTC.
RANGE = {"date_from": "2025-01-14", "date_to": "2025-01-15", "tz": SYDNEY}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def call(
    agent,
    lead,
    at: str,
    *,
    state=CallState.DISPOSED,
    talk=None,
    reported=None,
    disposition=None,
    callback=False,
):
    """A call created at ``at`` (UTC), dialed then, connected 10 s later when ``talk`` is given
    (ended ``talk`` s after), disposed a minute after it ended; ``reported``: the platform's talk."""
    made = make_call(agent, lead, state)
    created = utc(at)
    connected = created + timedelta(seconds=10) if talk is not None else None
    ended = (connected or created) + timedelta(seconds=talk or 0)
    fields = {
        "created_at": created,
        "dialed_at": created,
        "connected_at": connected,
        "ended_at": ended,
        "talk_seconds": reported,
        "disposition": disposition,
    }
    if state == CallState.DISPOSED:
        fields["disposed_at"] = ended + timedelta(minutes=1)
    if callback:
        fields["callback_at"] = ended + timedelta(days=1)
    Call.objects.filter(pk=made.pk).update(**fields)
    return made


def span(agent, presence, start: str, end: str):
    PresenceSpan.objects.create(agent=agent, presence=presence, started_at=utc(start), ended_at=utc(end))


@pytest.fixture
def floor(db):
    alice = make_user_agent("alice", 3)
    bob = make_user_agent("=bob", 4)  # a name a spreadsheet would run
    sales = make_campaign(name="Sales")
    survey = make_campaign(name="Survey", platform_campaign_id="596")
    win = Disposition.objects.get(campaign=sales, name="Interested")
    win.is_conversion = True
    win.save()
    no_answer = Disposition.objects.get(campaign=sales, name="No answer")
    sales_back = Disposition.objects.get(campaign=sales, name="Call back")
    survey_back = Disposition.objects.get(campaign=survey, name="Call back")
    formula = Disposition.objects.create(campaign=survey, name=FORMULA, position=9)
    s = make_leads(sales, 5)
    v = make_leads(survey, 2, start=100)
    # Sydney 14 January
    call(alice, s[0], "2025-01-13T22:00:00", talk=120, disposition=win)
    call(alice, s[1], "2025-01-13T23:00:00", disposition=no_answer)
    call(bob, v[0], "2025-01-14T02:00:00", talk=200, reported=300, disposition=survey_back, callback=True)
    # Sydney 15 January (the first one still the 14th in UTC): bob keeps his callback; alice's
    # is dialed by bob, which does not keep it.
    call(bob, v[0], "2025-01-14T14:00:00", talk=60, disposition=formula)
    call(alice, s[2], "2025-01-15T00:00:00", talk=45, disposition=sales_back, callback=True)
    call(bob, s[2], "2025-01-15T03:00:00", state=CallState.ENDED)
    call(alice, s[3], "2025-01-15T04:00:00", state=CallState.SKIPPED)  # a skip is not a call
    # Outside the range in Sydney, inside it by UTC dates.
    call(alice, s[4], "2025-01-13T12:00:00", talk=30, disposition=win)
    call(alice, s[4], "2025-01-15T13:30:00", talk=30, disposition=win)
    # Presence: wrap-up on the 14th; Not ready across Sydney's midnights and the range's ends.
    span(alice, Presence.WRAP_UP, "2025-01-13T22:02:00", "2025-01-13T22:03:00")  # 60 s, 14th
    span(bob, Presence.WRAP_UP, "2025-01-14T02:05:00", "2025-01-14T02:06:30")  # 90 s, 14th
    span(alice, Presence.NOT_READY, "2025-01-13T12:00:00", "2025-01-13T13:30:00")  # 30 min in, 14th
    span(alice, Presence.NOT_READY, "2025-01-14T12:30:00", "2025-01-14T13:30:00")  # 30 min each day
    span(bob, Presence.NOT_READY, "2025-01-15T12:00:00", "2025-01-15T14:00:00")  # 1 h in, 15th
    span(alice, Presence.READY, "2025-01-14T00:00:00", "2025-01-14T02:00:00")  # not reported
    return {"alice": alice, "bob": bob, "sales": sales, "survey": survey}


def cells(text: str) -> tuple[str, ...]:
    """A row written as its cells with spaces between (no cell here has a space)."""
    return tuple(text.split())


# The dispositions' columns: most used first, then by name.
DISPOSITIONS = ["Call back", FORMULA, "Interested", "No answer"]
# (calls, connects, rate, conversions, talk, average talk, wrap-up, Not ready, booked, kept,
#  dispositions in DISPOSITIONS' order), as the page shows them.
BY_DAY = {
    "day-2025-01-14": cells("2025-01-14 3 2 66.7% 1 7:00 3:30 2:30 1:00:00 1 1 1 0 1 1"),
    "day-2025-01-15": cells("2025-01-15 3 2 66.7% 0 1:45 0:52 0:00 1:30:00 1 0 1 1 0 0"),
    "total": cells("Total 6 4 66.7% 1 8:45 2:11 2:30 2:30:00 2 1 2 1 1 1"),
}
BY_CAMPAIGN = {
    "sales": cells("Sales 4 2 50.0% 1 2:45 1:22 — — 1 0 1 0 1 1"),
    "survey": cells("Survey 2 2 100.0% 0 6:00 3:00 — — 1 1 1 1 0 0"),
    "total": cells("Total 6 4 66.7% 1 8:45 2:11 — — 2 1 2 1 1 1"),
}
BY_AGENT = {
    "alice": cells("alice 3 2 66.7% 1 2:45 1:22 1:00 1:30:00 1 0 1 0 1 1"),
    "bob": cells("=bob 3 2 66.7% 0 6:00 3:00 1:30 1:00:00 1 1 1 1 0 0"),
    "total": cells("Total 6 4 66.7% 1 8:45 2:11 2:30 2:30:00 2 1 2 1 1 1"),
}
# The CSV: the same figures, times in whole seconds, the rate as a number.
CSV_BY_DAY = [
    list(cells("2025-01-14 3 2 66.7 1 420 210 150 3600 1 1 1 0 1 1")),
    list(cells("2025-01-15 3 2 66.7 0 105 52 0 5400 1 0 1 1 0 0")),
    list(cells("Total 6 4 66.7 1 525 131 150 9000 2 1 2 1 1 1")),
]
CSV_BY_AGENT = [  # by name: "=bob" before "alice"
    list(cells("'=bob 3 2 66.7 0 360 180 90 3600 1 1 1 1 0 0")),
    list(cells("alice 3 2 66.7 1 165 82 60 5400 1 0 1 0 1 1")),
    list(cells("Total 6 4 66.7 1 525 131 150 9000 2 1 2 1 1 1")),
]
FIGURES = [
    "calls",
    "connects",
    "contact_rate",
    "conversions",
    "talk",
    "avg_talk",
    "wrap_up",
    "not_ready",
    "callbacks_booked",
    "callbacks_kept",
]


def table_row(page: str, slug: str) -> tuple[str, ...]:
    """A row of the report's table as shown: its label, its figures, its dispositions."""
    row = re.search(rf'<tr id="report-{slug}">(.*?)</tr>', page, re.S)
    assert row, f"no row {slug}"
    html = row.group(1)
    label = re.search(r'data-figure="label">(?:<a [^>]*>)?([^<]*)<', html).group(1).strip()
    cells = [re.search(rf'data-figure="{name}">([^<]*)<', html).group(1).strip() for name in FIGURES]
    counts = re.findall(r'data-disposition="\d+">([^<]*)<', html)
    return (label, *cells, *counts)


def headings(page: str) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", page, re.S).group(1)
    return re.findall(r'<th class="num" data-disposition="\d+">([^<]*)</th>', head)


def unescape(text: str) -> str:
    return text.replace("&#x27;", "'").replace("&amp;", "&").replace("&quot;", '"').replace("&lt;", "<")


def read_csv(answer) -> list[list[str]]:
    assert answer["Content-Type"].startswith("text/csv")
    assert answer.streaming
    return list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode())))


def test_by_day_in_sydney(floor, supervisor):
    page = login(supervisor).get(URL, RANGE).content.decode()
    assert [unescape(h) for h in headings(page)] == DISPOSITIONS
    for slug, expected in BY_DAY.items():
        assert table_row(page, slug) == expected, slug
    assert "days in Australia/Sydney" in page
    # The chart: one pair of bars per day, the 14th and the 15th as tall (3 calls each).
    assert page.count('class="report-bar-calls"') == 2
    assert re.findall(r'class="report-bar-calls" x="[^"]+" y="([^"]+)"', page) == ["4.0", "4.0"]


def test_by_campaign_and_by_agent(floor, supervisor):
    client = login(supervisor)
    page = client.get(URL, {**RANGE, "group": "campaign"}).content.decode()
    for key, expected in BY_CAMPAIGN.items():
        slug = "total" if key == "total" else f"campaign-{floor[key].pk}"
        assert table_row(page, slug) == expected, key
    # Each campaign links to its own results export over the same days (not rebuilt here).
    export = (
        f"/supervisor/campaigns/{floor['sales'].pk}/export.csv?date_from=2025-01-14&amp;date_to=2025-01-15"
    )
    assert export in page
    page = client.get(URL, {**RANGE, "group": "agent"}).content.decode()
    for key, expected in BY_AGENT.items():
        slug = "total" if key == "total" else f"agent-{floor[key].pk}"
        assert table_row(page, slug) == expected, key


def test_the_csv_is_the_table_and_formula_safe(floor, supervisor):
    client = login(supervisor)
    answer = client.get(CSV_URL, RANGE)
    assert 'filename="report-day-2025-01-14-2025-01-15.csv"' in answer["Content-Disposition"]
    header, *rows = read_csv(answer)
    columns = "Calls|Connects|Contact rate %|Conversions|Talk seconds|Average talk seconds|"
    columns += "Wrap-up seconds|Not ready seconds|Callbacks booked|Callbacks kept"
    assert header == ["Day", *columns.split("|"), "Call back", "'" + FORMULA, "Interested", "No answer"]
    assert rows == CSV_BY_DAY
    header, *rows = read_csv(client.get(CSV_URL, {**RANGE, "group": "agent"}))
    assert header[0] == "Agent" and rows == CSV_BY_AGENT
    assert not any(cell.startswith("=") for row in [header, *rows] for cell in row)


@pytest.mark.parametrize("group", [reports.DAY, reports.CAMPAIGN, reports.AGENT])
def test_a_fixed_number_of_queries(floor, group):
    """Calls' figures, dispositions, callbacks, presence spans (not by campaign) and names (not
    by day): whatever the number of days, rows and calls."""
    start, end = datetime(2025, 1, 1).date(), datetime(2025, 12, 31).date()
    with CaptureQueriesContext(connection) as queries:
        report = reports.build(group=group, date_from=start, date_to=end, zone=reports.ZoneInfo(SYDNEY))
    assert len(queries) == {reports.DAY: 4, reports.CAMPAIGN: 4, reports.AGENT: 5}[group]
    assert report.total.calls.calls == 8  # the two calls outside the Sydney days too


def test_the_zone_moves_the_days(floor, supervisor):
    """Read in UTC, the same range keeps other calls: the 13th-UTC calls fall out, and the call
    at 13:30 UTC on the 15th comes in."""
    page = login(supervisor).get(URL, {**RANGE, "tz": "UTC"}).content.decode()
    assert table_row(page, "day-2025-01-14")[1:3] == ("2", "2")  # bob's two calls on the 14th UTC
    assert table_row(page, "day-2025-01-15")[1:3] == ("3", "2")


def test_defaults_are_the_last_seven_days_in_the_zone_last_used(floor, supervisor):
    client = login(supervisor)
    page = client.get(URL).content.decode()
    today = timezone.localdate()
    assert f'value="{today.isoformat()}"' in page
    assert f'value="{(today - timedelta(days=6)).isoformat()}"' in page
    assert page.count('<tr id="report-day-') == 7
    client.get(URL, RANGE)
    page = client.get(URL).content.decode()
    sydney_today = timezone.now().astimezone(reports.ZoneInfo(SYDNEY)).date()
    assert f'<option value="{SYDNEY}" selected>' in page
    assert f'name="date_to" value="{sydney_today.isoformat()}"' in page


@pytest.mark.parametrize(
    "query, words",
    [
        ({"date_from": "yesterday"}, "Write the date as YYYY-MM-DD"),
        ({"date_from": "2025-02-30"}, "Write the date as YYYY-MM-DD"),
        ({"date_from": "2025-01-15", "date_to": "2025-01-14"}, "The range ends before it starts."),
        ({"date_from": "2020-01-01", "date_to": "2025-01-14"}, "A report covers at most 366 days."),
        ({"date_from": "0001-01-01", "date_to": "0001-01-02"}, "Pick a date between 2000 and 2200."),
        ({"date_to": "9999-12-31"}, "Pick a date between 2000 and 2200."),
        ({"date_to": "0001-01-01"}, "Pick a date between 2000 and 2200."),
        ({"tz": "Mars/Olympus"}, "Select a valid choice."),
        ({"group": "lead"}, "Select a valid choice."),
        # A NUL is dropped before any view reads the query (campaigns.nul): the date is read.
        ({"date_from": "2025-01-14\x00", "date_to": "2025-01-13"}, "The range ends before it starts."),
    ],
)
def test_wrong_choices_are_said_in_words(supervisor, query, words):
    client = login(supervisor)
    answer = client.get(URL, query)
    assert answer.status_code == 400
    page = answer.content.decode()
    assert 'id="report-errors"' in page and words in page and 'id="report"' not in page
    answer = client.get(CSV_URL, query)
    assert answer.status_code == 400 and words in answer.content.decode()


@pytest.mark.parametrize("url", [URL, CSV_URL])
def test_agents_and_anonymous_users_are_refused(client, agent, url):
    answer = client.get(url)
    assert answer.status_code == 302 and answer["Location"].startswith("/login/")
    assert login(agent).get(url).status_code == 403


def test_supervisors_find_it_in_the_menu(supervisor, agent):
    assert 'href="/supervisor/reports/"' in login(supervisor).get("/supervisor/").content.decode()
    assert 'href="/supervisor/reports/"' not in login(agent).get("/desk/").content.decode()


def test_customer_data_is_escaped(supervisor, agent):
    campaign = make_campaign(name="<script>alert('c')</script>")
    made = make_call(agent, make_leads(campaign, 1)[0], CallState.ENDED)
    today = timezone.localdate().isoformat()
    page = login(supervisor).get(URL, {"group": "campaign", "date_from": today, "date_to": today}).content
    assert b"<script>alert" not in page and b"&lt;script&gt;alert" in page
    assert made.pk


def test_the_wallboard_and_the_report_count_alike(supervisor, agent, other):
    """Today's calls, one with the platform's own talk time: the wallboard's figures are the
    report's (both count through ``calls.figures``)."""
    campaign = make_campaign(name="Today")
    leads = make_leads(campaign, 4)
    now = max(wallboard.start_of_day(), timezone.now() - timedelta(minutes=30))
    for lead, who, talk, reported in (
        (leads[0], agent, 90, None),
        (leads[1], other, 40, 70),
        (leads[2], agent, None, None),
    ):
        made = make_call(who, lead, CallState.ENDED)
        connected = now + timedelta(seconds=5) if talk else None
        Call.objects.filter(pk=made.pk).update(
            created_at=now,
            dialed_at=now,
            connected_at=connected,
            ended_at=(connected or now) + timedelta(seconds=talk or 0),
            talk_seconds=reported,
        )
    board = next(f for f in wallboard.campaign_figures() if f.campaign == campaign)
    today = timezone.localdate()
    report = reports.build(
        group=reports.CAMPAIGN, date_from=today, date_to=today, zone=timezone.get_current_timezone()
    )
    row = next(r for r in report.rows if r.key == campaign.pk)
    assert (
        (board.calls, board.connected, board.contact_rate)
        == (row.calls.calls, row.calls.connected, 66.7)
        == (3, 2, 66.7)
    )
    assert board.avg_talk == row.calls.avg_talk == timedelta(seconds=80)  # (90 + 70) / 2
    page = login(supervisor).get("/supervisor/wallboard/").content.decode()
    assert re.search(rf'<tr id="wb-campaign-{campaign.pk}">.*?data-figure="avg_talk">1:20<', page, re.S)

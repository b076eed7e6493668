"""What the agent reads when the server, the agent and the leads are all in different zones, at a
frozen instant where their dates differ: 23:30 UTC on a Monday is Tuesday 00:30 for the agent in
Berlin, Tuesday 10:30 in Sydney, Tuesday 05:00 in Kolkata, Monday 18:30 in New York and Monday
15:30 in Los Angeles.

The web process (daphne, its socket included) runs with its clock stopped at that instant
(``tests.browser.frozen_daphne``), the browser's clock too (Playwright's ``page.clock``), and the
browser sits in Europe/Berlin. The server's TIME_ZONE is UTC. Each lead is put on the agent's desk
in turn: the preview card (the lead's time, 24-hour, its weekday and zone), the earlier calls,
the callback picker's minimum, and the calling window's refusal; the card's clock ticking a minute
later in the lead's zone; then the callbacks list, each due time in the lead's zone and in the
agent's; then a callback booked through the picker at 10:00 each lead's time, stored as that
instant."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from agentdesk.models import Agent
from calls.models import Call, CallState
from campaigns.models import Lead
from tests.browser.conftest import watch_console
from tests.browser.test_desk_browser import desk_synced, pick
from tests.emulator_fixtures import free_port, wait_for_http
from tests.factories import PASSWORD, make_call, make_campaign, make_user_agent
from tests.process_fixtures import ManagedProcess, child_env

pytestmark = [pytest.mark.browser, pytest.mark.slow]

INSTANT = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)  # a Monday
AGENT_ZONE = "Europe/Berlin"


@pytest.fixture
def frozen_web(transactional_db) -> Iterator[str]:
    """A daphne of its own, on the test database, its clock stopped at ``INSTANT``."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = child_env(PUBLIC_BASE_URL=base_url, ALLOWED_HOSTS="127.0.0.1,localhost")
    argv = [sys.executable, "-m", "tests.browser.frozen_daphne", INSTANT.isoformat()]
    argv += ["-b", "127.0.0.1", "-p", str(port), "agentdesk.asgi:application"]
    web = ManagedProcess("frozen-web", argv, env, settings.VAR_DIR / "test-logs" / "frozen-web.log")
    web.start()
    try:
        wait_for_http(f"{base_url}/login/", timeout=30)
        yield base_url
    finally:
        web.stop()


def _lead(campaign, name: str, number: str, zone: str, **fields) -> Lead:
    return Lead.objects.create(
        campaign=campaign, number=number, name=name, timezone=zone, source=Lead.Source.SEED, **fields
    )


def _book_callback(agent: Agent, lead: Lead, local: datetime) -> None:
    """``agent`` disposed a call on ``lead`` with a callback at ``local`` (the lead's time)."""
    call = make_call(agent, lead, CallState.DISPOSED)
    disposition = lead.campaign.dispositions.get(name="Call back")
    Call.objects.filter(pk=call.pk).update(
        disposition=disposition,
        disposed_at=INSTANT - timedelta(hours=3),
        callback_at=local,
    )
    Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.CALLBACK, next_attempt_at=local)


def _on_desk(agent: Agent, lead: Lead) -> None:
    """``lead`` is the one the agent holds (at the frozen instant), and no other."""
    Lead.objects.filter(lease_owner=agent).update(lease_owner=None, lease_expires_at=None)
    Lead.objects.filter(pk=lead.pk).update(
        lease_owner=agent, lease_expires_at=INSTANT + timedelta(minutes=10)
    )


# (name, number, zone, time on the card, day on the card, picker's min, window open, refusal,
#  the earlier call an hour ago in the lead's time)
PREVIEWS = [
    (
        "Sydney",
        "+61293744000",
        "Australia/Sydney",
        "10:30",
        "Tue",
        "2026-12-08T10:30",
        True,
        "",
        "Dec 8 09:30",
    ),
    (
        "Kolkata",
        "+912226000000",
        "Asia/Kolkata",
        "05:00",
        "Tue",
        "2026-12-08T05:00",
        False,
        "It is 05:00 in Asia/Kolkata; calls are allowed 09:00-20:00",
        "Dec 8 04:00",
    ),
    (
        "New York",
        "+12125550100",
        "America/New_York",
        "18:30",
        "Mon",
        "2026-12-07T18:30",
        True,
        "",
        "Dec 7 17:30",
    ),
    (
        "Los Angeles",
        "+12135550100",
        "America/Los_Angeles",
        "15:30",
        "Mon",
        "2026-12-07T15:30",
        True,
        "",
        "Dec 7 14:30",
    ),
]


def test_the_desk_reads_each_leads_own_time_and_the_agents(frozen_web: str, browser):
    agent = make_user_agent("agent", 1)
    campaign = make_campaign(name="Four zones", window=(time(9, 0), time(20, 0)))
    Agent.objects.filter(pk=agent.pk).update(desk_campaign=campaign)
    leads = {name: _lead(campaign, name, number, zone) for name, number, zone, *_ in PREVIEWS}
    # An earlier call on each lead, an hour ago: 22:30 on the server, 17:30 in New York.
    for lead in leads.values():
        earlier = make_call(agent, lead, CallState.DISPOSED)
        Call.objects.filter(pk=earlier.pk).update(created_at=INSTANT - timedelta(hours=1))
    # Three callbacks the agent booked, each at a round hour of the lead's own day.
    sydney, la, ny = (
        _lead(campaign, "Sydney callback", "+61293744001", "Australia/Sydney"),
        _lead(campaign, "LA callback", "+12135550101", "America/Los_Angeles"),
        _lead(campaign, "NY callback", "+12125550101", "America/New_York"),
    )
    _book_callback(agent, sydney, datetime(2026, 12, 8, 10, 0, tzinfo=ZoneInfo("Australia/Sydney")))
    _book_callback(agent, la, datetime(2026, 12, 8, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles")))
    _book_callback(agent, ny, datetime(2026, 12, 7, 19, 0, tzinfo=ZoneInfo("America/New_York")))

    context = browser.new_context(viewport={"width": 1366, "height": 820}, timezone_id=AGENT_ZONE)
    problems: list[str] = []
    watch_console(context, problems)
    page: Page = context.new_page()
    page.clock.set_fixed_time(INSTANT)
    page.goto(f"{frozen_web}/login/")
    page.fill("#id_username", "agent")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{frozen_web}/desk/")

    for name, _number, zone, clock, day, minimum, open_, refusal, earlier_at in PREVIEWS:
        _on_desk(agent, leads[name])
        page.reload()
        desk_synced(page)  # the socket's first frame (rendered at the frozen instant) is in
        expect(page.locator("#lead-name")).to_have_text(name)
        expect(page.locator("#lead-local-time")).to_have_text(clock)
        expect(page.locator("#lead-local-day")).to_have_text(f"{day} · {zone}")
        expect(page.locator("#dispose-callback")).to_have_attribute("min", minimum)
        expect(page.locator("#desk-dispose .callback-row")).to_contain_text(f"lead's time, {zone}")
        if open_:
            expect(page.locator("#lead-window")).to_have_text("Calling window open")
            expect(page.locator("#btn-dial")).to_be_enabled()
        else:
            expect(page.locator("#lead-window")).to_have_text("Outside calling window")
            expect(page.locator("#dial-blocked")).to_have_text(f"Dial disabled: {refusal}")
            expect(page.locator("#btn-dial")).to_be_disabled()
        expect(page.locator("#lead-history td").first).to_have_text(earlier_at)
        expect(page.locator("#lead-history td").first).to_have_attribute("title", f"The lead's time ({zone})")
        # The card's clock ticks in the lead's zone: a minute later for the browser, there too.
        later = (INSTANT + timedelta(minutes=1)).astimezone(ZoneInfo(zone))
        page.clock.set_fixed_time(INSTANT + timedelta(minutes=1))
        expect(page.locator("#lead-local-time")).to_have_text(f"{later:%H:%M}")
        expect(page.locator("#lead-local-day")).to_have_text(f"{day} · {zone}")
        page.clock.set_fixed_time(INSTANT)

    # The callbacks list, soonest first: the lead's time and zone, then the agent's (Berlin).
    rows = page.locator("#callbacks-list tr.cb")
    expect(rows).to_have_count(3)
    expected = [
        ("Sydney callback", "Tue 10:00 Sydney", "Australia/Sydney", "Tue 00:00", True),  # 23:00 UTC: due
        ("NY callback", "Mon 19:00 New York", "America/New_York", "Tue 01:00", False),  # 00:00 UTC
        ("LA callback", "Tue 09:00 Los Angeles", "America/Los_Angeles", "Tue 18:00", False),  # 17:00 UTC
    ]
    for i, (name, theirs, zone, mine, due) in enumerate(expected):
        row = rows.nth(i)
        expect(row.locator("td").nth(0)).to_contain_text(name)
        expect(row.locator("td").nth(1)).to_have_text(theirs)
        expect(row.locator("td").nth(1)).to_have_attribute("title", f"The lead's time ({zone})")
        expect(row.locator("td.agent-time")).to_have_text(mine)
        expect(row.locator("td.agent-time")).to_have_attribute("title", f"Your time ({AGENT_ZONE})")
        if due:
            expect(row).to_have_class("cb due")
        else:
            expect(row).to_have_class("cb")

    # A callback booked through the picker at 10:00 the lead's time, the next day there, is
    # stored as that instant (not 10:00 on the server's clock or the agent's).
    for name, _number, zone, *_ in PREVIEWS:
        lead = leads[name]
        _on_desk(agent, lead)
        ended = make_call(agent, lead, CallState.ENDED)
        page.reload()
        desk_synced(page)
        expect(page.locator("#call-state")).to_contain_text("Call ended")
        pick(page, "Call back")
        tomorrow = INSTANT.astimezone(ZoneInfo(zone)).date() + timedelta(days=1)
        page.fill("#dispose-callback", f"{tomorrow:%Y-%m-%d}T10:00")
        page.click("#btn-dispose")
        expect(page.locator("#desk-dispose")).not_to_have_attribute("data-call-id", str(ended.pk))
        ended.refresh_from_db()
        assert ended.state == CallState.DISPOSED, name
        assert ended.callback_at == datetime.combine(tomorrow, time(10, 0), ZoneInfo(zone)), name
        lead.refresh_from_db()
        assert lead.next_attempt_at == ended.callback_at, name
    context.close()
    assert not problems, problems

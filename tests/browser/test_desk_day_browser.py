"""The lower desk in a real browser (Ryng through its emulator): the agent's day and recent calls
counting a call as it happens, notes corrected by keyboard, the wrap-up limit, a due callback
coming before new leads and a callback dialled from the list, and the signal a lead makes while
the tab is in the background (title, sound, desktop notification). Every page is watched for CSP
violations and htmx errors (conftest)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from agentdesk import live
from agentdesk.models import Agent
from calls.models import Call, CallState
from campaigns.models import Campaign, Lead
from tests.browser.test_desk_browser import desk_synced, pick, pick_and_go_ready, shot, sign_in, wait_call

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Records what the page plays and notifies, in place of the browser's own (headless Chromium
# has no speakers and no notification centre); the desk's code is unchanged.
FAKE_SIGNALS = """
window.__plays = [];
window.__notes = [];
class FakeNotification {
  constructor(title, options) { window.__notes.push([title, (options || {}).body || '']); }
}
FakeNotification.permission = 'granted';
FakeNotification.requestPermission = () => Promise.resolve('granted');
window.Notification = FakeNotification;
HTMLMediaElement.prototype.play = function () { window.__plays.push(this.src); return Promise.resolve(); };
"""

HIDE = """(hidden) => {
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => hidden ? 'hidden' : 'visible'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def test_a_call_counts_on_the_day_and_in_recent_calls_with_the_wrap_up_limit(page: Page, desk):
    campaign = desk.campaigns["ryng"]
    Campaign.objects.filter(pk=campaign.pk).update(wrap_up_limit_seconds=3)
    sign_in(page, desk.base_url)
    assert page.request.get(f"{desk.base_url}/favicon.ico").ok  # no 404 on every page
    expect(page.locator("#day-calls")).to_have_text("0")
    number = pick_and_go_ready(page, campaign)
    # The time in the current state ticks from the server's timestamp, no polling.
    expect(page.locator("#in-state")).not_to_have_text("0:00", timeout=5_000)
    expect(page.locator("#desk-day .day-ready.current")).to_be_visible()

    desk.outcome(number, agent_ring_seconds=1, ring_seconds=1)
    page.keyboard.press("d")
    expect(page.locator("#call-state")).to_contain_text("Connected", timeout=30_000)
    expect(page.locator("#presence-reason")).to_be_disabled()  # like the Not-ready button
    expect(page.locator(".timer")).to_have_text("0:02", timeout=10_000)  # a real conversation
    page.keyboard.press("e")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    expect(page.locator("#call-talk-time")).not_to_have_text("0:00")
    # Pushed with the move to wrap-up (a presence change), not with every call state.
    expect(page.locator("#day-connects")).to_have_text("1")
    # Wrap-up counts against the campaign's limit, then says it is over; nothing is disposed.
    expect(page.locator("#wrapup")).to_contain_text("of 0:03")
    expect(page.locator("#wrapup")).to_have_class("wrapup over", timeout=10_000)
    expect(page.locator("#wrapup-over")).to_be_visible()
    assert wait_call(number, {CallState.ENDED}).state == CallState.ENDED

    pick(page, "Interested")
    page.fill("#dispose-notes", "Wants <b>plus</b>")
    shot(page, "desk-wrap-up")  # over the wrap-up limit, the day counting the call
    page.click("#btn-dispose")
    expect(page.locator("#day-calls")).to_have_text("1")
    expect(page.locator("#day-conversions")).to_have_text("1")  # "Interested" counts
    row = page.locator("#recent-list tr.recent-row").first
    expect(row).to_contain_text("Interested")
    expect(row).to_contain_text("Wants <b>plus</b>")  # shown as text, escaped

    # H opens the last call's notes; Enter saves the correction.
    page.keyboard.press("h")
    notes = page.locator("#recent-list .notes-input").first
    expect(notes).to_be_focused()
    notes.fill("Wants the plus plan, call after 5")
    shot(page, "desk-recent-calls")  # the day after the call, a correction being typed
    page.keyboard.press("Enter")
    expect(row).to_contain_text("Wants the plus plan, call after 5")
    assert (
        Call.objects.filter(number=number).order_by("-id").first().notes
        == "Wants the plus plan, call after 5"
    )


def test_a_due_callback_comes_first_and_another_is_dialled_from_the_list(page: Page, desk):
    campaign = desk.campaigns["ryng"]
    agent = Agent.objects.get(user__username="agent1")
    first, second = Lead.objects.filter(campaign=campaign).order_by("-id")[:2]
    now = timezone.now()
    for lead, at in ((first, now - timedelta(minutes=1)), (second, now + timedelta(hours=2))):
        Lead.objects.filter(pk=lead.pk).update(status=Lead.Status.CALLBACK, next_attempt_at=at)
        Call.objects.create(
            lead=lead,
            campaign=campaign,
            agent=agent,
            account=campaign.account,
            state=CallState.DISPOSED,
            number=lead.number,
            disposition=campaign.dispositions.get(name="Call back"),
            callback_at=at,
            disposed_at=now - timedelta(hours=1),
        )
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, campaign)
    assert number == first.number  # the due callback, not the lowest new lead
    # The campaign's dispositions, not the "no dispositions" of the desk before it was picked
    # (their box is kept across swaps for one campaign and call, never across campaigns).
    expect(page.locator("#desk-dispose .dispositions")).to_contain_text("Call back")
    due = page.locator("#callbacks-list tr.cb.due")
    expect(due).to_have_count(1)
    expect(due).to_contain_text("On desk")
    expect(page.locator("#callbacks-list tr.cb")).to_have_count(2)

    shot(page, "desk-callbacks")  # the due callback on the desk, the next one waiting

    # B: the first callback that can be taken; Enter previews it; D dials it as usual.
    page.keyboard.press("b")
    take = page.locator(f"#callbacks-list tr[data-lead-id='{second.pk}'] .cb-take")
    expect(take).to_be_focused()
    # A push redraws the list meanwhile (any event of the desk may): the keyboard stays on it.
    take.evaluate("button => { button.dataset.drawnBefore = '1'; }")
    live.send(live.agent_group(agent.pk), live.desk_event([live.CALLBACKS]))
    expect(take).not_to_have_attribute("data-drawn-before", "1")  # a new list came
    expect(take).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#lead-number")).to_have_text(second.number)
    expect(page.locator("#desk-preview")).to_have_attribute("data-lead-id", str(second.pk))
    desk.outcome(second.number, agent_ring_seconds=1, ring_seconds=1)
    page.keyboard.press("d")
    call = wait_call(
        second.number, {CallState.CONNECTED, CallState.CUSTOMER_RINGING, CallState.AGENT_CONNECTED}
    )
    assert call.agent_id == agent.pk
    assert Lead.objects.get(pk=first.pk).lease_owner_id is None  # the one it replaced went back


def test_a_lead_arriving_in_a_background_tab_signals(page: Page, desk):
    page.context.add_init_script(FAKE_SIGNALS)
    campaign = desk.campaigns["ryng"]
    sign_in(page, desk.base_url)
    page.goto(f"{desk.base_url}/desk/?campaign={campaign.pk}")
    desk_synced(page)
    title = page.title()
    page.keyboard.press("a")  # notifications: asked once (granted here)
    expect(page.locator("#btn-notify")).to_contain_text("Notifications on")

    page.evaluate(HIDE, True)
    page.keyboard.press("r")  # Ready: the next lead arrives while the tab is hidden
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)
    expect(page).to_have_title("● New lead · AgentDesk")
    name = page.locator("#lead-name").inner_text().strip()
    assert page.evaluate("window.__plays.length") == 1
    assert page.evaluate("window.__plays[0]").endswith(".wav")
    assert page.evaluate("window.__notes")[0][0] == "New lead"
    assert name in page.evaluate("window.__notes")[0][1]
    page.evaluate(HIDE, False)
    expect(page).to_have_title(title)

    # M turns the sound off, and it stays off (localStorage) across a reload; a lead arriving
    # in the background still changes the title and notifies, silently.
    page.keyboard.press("m")
    expect(page.locator("#btn-sound")).to_contain_text("Sound off")
    page.reload()
    desk_synced(page)
    expect(page.locator("#btn-sound")).to_contain_text("Sound off")
    page.evaluate(HIDE, True)
    page.keyboard.press("s")
    page.keyboard.press("5")  # Other: straight into its few words
    expect(page.locator("#skip-other")).to_be_focused()
    page.keyboard.type("asked for an email")
    page.keyboard.press("Enter")
    expect(page.locator("#lead-name")).not_to_have_text(name, timeout=30_000)
    expect(page).to_have_title("● New lead · AgentDesk")
    assert page.evaluate("window.__plays.length") == 0  # a fresh document after the reload
    assert len(page.evaluate("window.__notes")) == 1
    skipped = Call.objects.filter(state=CallState.SKIPPED).order_by("-id").first()
    assert skipped.notes == "Skipped: Other: asked for an email"

"""The agent desk in a real browser, through the emulators, for each platform: sign in, go Ready,
preview, dial, watch every call state arrive over the WebSocket (no reload), end, dispose with
notes, and the next lead appears. Also: busy / no-answer reasons, a keyboard-only cycle, and a
desk whose WebSocket drops and comes back showing what it missed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from agentdesk.models import Agent
from calls.models import Call, CallState
from tests.browser.conftest import SCREENSHOTS
from tests.browser.network import DeskSocket, SlowAnswers

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# The legs in between (platforms signal different subsets: Ryng has no ringing callbacks, so
# "agent connected" -> "calling the customer" is what it shows).
PROGRESS = re.compile(r"Your phone is ringing|Calling the customer…|Customer ringing")
SHOTS = Path(__file__).resolve().parent.parent.parent / "docs" / "screenshots"

CALL_ORDER = ("Previewing", "Dialing…", "Your phone is ringing", "Calling the customer…", "Customer ringing")


def call_rank(text: str) -> int | None:
    """Where a shown call state sits in a call's life (the legs in the order platforms send them)."""
    for rank, start in enumerate((*CALL_ORDER, "Connected", "Call ended")):
        if text.startswith(start):
            return rank
    return None


# Records every call-state text the page shows, and marks the document so a reload is detected.
WATCH = """
() => {
  window.__deskDoc = window.__deskDoc || Math.random();
  window.__states = [];
  const seen = () => {
    const el = document.querySelector('#call-state');
    const text = el ? el.textContent.trim().replace(/\\s+/g, ' ') : '';
    if (text && window.__states[window.__states.length - 1] !== text) window.__states.push(text);
  };
  new MutationObserver(seen).observe(document.querySelector('#desk-main'), {subtree: true, childList: true, characterData: true});
  seen();
  return window.__deskDoc;
}
"""


# Presses Enter synchronously right after the next pushed panel is swapped in, before it settles.
ENTER_RIGHT_AFTER_A_PUSH = """
() => document.body.addEventListener('htmx:oobAfterSwap', () => {
  document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
}, {once: true})
"""


def shot(page: Page, name: str) -> None:
    """docs/screenshots/<name>.png, the whole page (the desk's lower panels included), when the
    run takes screenshots (``scripts/screenshots``: ``DESK_SCREENSHOTS=1``, then compressed)."""
    if SCREENSHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True, caret="initial")


def sign_in(page: Page, base_url: str, username: str = "agent1") -> None:
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "demo")
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{base_url}/desk/")
    desk_synced(page)


def desk_synced(page: Page) -> None:
    """The socket is open and the desk has re-read its state (desk.js marks both on <body>)."""
    expect(page.locator("body")).to_have_attribute("data-ws", "open")
    expect(page.locator("body")).to_have_attribute("data-synced", re.compile(r"\d+"))


def pick_and_go_ready(page: Page, campaign) -> str:
    page.select_option("#campaign-select", str(campaign.pk))
    expect(page.locator("#desk-preview")).to_contain_text("not taking leads")
    page.click("#btn-ready")
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)
    return page.locator("#lead-number").inner_text().strip()


def pick(page: Page, disposition: str) -> None:
    name = page.locator(".disp-name").get_by_text(disposition, exact=True)
    page.locator("label.disp").filter(has=name).locator("input").check()


def wait_call(number: str, states: set[str], timeout: float = 30) -> Call:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = Call.objects.filter(number=number).order_by("-id").first()
        if call is not None and call.state in states:
            return call
        time.sleep(0.1)
    raise AssertionError(f"the call to {number} never reached {states}")


def keyboard_call(page: Page, desk) -> str:
    """With the keys alone: Ready, the next lead's number answered, Dial, End; the number."""
    page.keyboard.press("r")
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)
    number = page.locator("#lead-number").inner_text().strip()
    desk.outcome(number, agent_ring_seconds=50, ring_seconds=50)
    page.keyboard.press("d")
    expect(page.locator("#call-state")).to_contain_text("Connected", timeout=30_000)
    page.keyboard.press("e")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    return number


@pytest.mark.parametrize("platform", ["ryng", "huawei", "genesys"])
def test_a_whole_lead_cycle(page: Page, desk, platform):
    campaign = desk.campaigns[platform]
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, campaign)
    lead_id = page.locator("#desk-preview").get_attribute("data-lead-id")
    expect(page.locator("#lead-window")).to_contain_text("Calling window open")
    expect(page.locator("#lead-fields")).to_contain_text("City")
    if platform == "ryng":
        shot(page, "desk-preview")
    desk.outcome(number)
    doc = page.evaluate(WATCH)

    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_have_text(PROGRESS, timeout=30_000)
    expect(page.locator("#call-state")).to_have_text("Connected", timeout=30_000)
    expect(page.locator(".timer")).to_have_text("0:02", timeout=10_000)
    if platform == "ryng":
        shot(page, "desk-connected")
    expect(page.locator("#desk-presence")).to_contain_text("On call")
    page.click("#btn-end")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    expect(page.locator("#desk-presence")).to_contain_text("Wrap-up")

    states = page.evaluate("window.__states")
    assert page.evaluate("window.__deskDoc") == doc, "the page reloaded"
    # Each state arrived pushed, in the call's order, never going back: dialing (unless the
    # platform's first leg overtook the dial's own answer, which the desk then rightly drops),
    # the legs progressing, connected, ended.
    assert states[0] == "Previewing", states
    ranks = [call_rank(s) for s in states]
    assert None not in ranks and ranks == sorted(ranks), states
    between = states[1 : states.index("Connected")]
    assert any(PROGRESS.search(s) for s in between), states
    assert states.index("Connected") < states.index("Call ended"), states

    pick(page, "Interested")
    page.fill("#dispose-notes", f"Wants the plus plan ({platform})")
    if platform == "ryng":
        shot(page, "desk-disposition")
    page.click("#btn-dispose")
    # The next preview (on Huawei the platform may offer the same record again: a new lead).
    expect(page.locator("#desk-preview")).not_to_have_attribute("data-lead-id", lead_id, timeout=30_000)
    expect(page.locator("#lead-name")).to_be_visible()
    expect(page.locator("#call-state")).to_contain_text("Previewing")
    done = Call.objects.filter(number=number).order_by("-id").first()
    assert done.state == CallState.DISPOSED and done.notes == f"Wants the plus plan ({platform})"


@pytest.mark.parametrize("result,reason", [("busy", "Busy"), ("no_answer", "No answer")])
def test_busy_and_no_answer_show_their_reason(page: Page, desk, result, reason):
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, desk.campaigns["ryng"])
    desk.outcome(number, result, agent_ring_seconds=1, ring_seconds=100)
    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_contain_text(f"Failed: {reason}", timeout=40_000)
    expect(page.locator("#desk-call")).to_have_attribute("data-state", "failed")
    if result == "busy":
        shot(page, "desk-failed-busy")
    # A failed call is disposed like any other, and the desk moves on.
    pick(page, "No answer")
    page.click("#btn-dispose")
    expect(page.locator("#call-state")).to_contain_text("Previewing", timeout=30_000)
    expect(page.locator("#lead-number")).not_to_have_text(number)


def test_a_whole_cycle_with_the_keyboard_alone(page: Page, desk):
    campaign = desk.campaigns["ryng"]
    sign_in(page, desk.base_url)
    page.goto(f"{desk.base_url}/desk/?campaign={campaign.pk}")
    desk_synced(page)
    page.keyboard.press("?")
    expect(page.locator("#cheatsheet")).to_be_visible()
    if SCREENSHOTS:
        shot(page, "desk-keyboard")
    page.keyboard.press("Escape")
    expect(page.locator("#cheatsheet")).to_be_hidden()

    number = keyboard_call(page, desk)
    page.keyboard.press("1")
    expect(page.locator("#desk-dispose input[name=disposition]").first).to_be_checked()
    page.keyboard.press("n")
    expect(page.locator("#dispose-notes")).to_be_focused()
    page.keyboard.type("Keyboard only")
    page.keyboard.press("Enter")
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    call = Call.objects.filter(number=number).order_by("-id").first()
    assert call.state == CallState.DISPOSED and call.notes == "Keyboard only"

    # Skip with the keyboard too: S, a reason number, Enter.
    skipped = page.locator("#lead-number").inner_text().strip()
    page.keyboard.press("s")
    expect(page.locator("#skip-form")).to_be_visible()
    page.keyboard.press("3")
    page.keyboard.press("Enter")
    expect(page.locator("#lead-number")).not_to_have_text(skipped, timeout=30_000)
    assert Call.objects.get(number=skipped, state=CallState.SKIPPED).notes == "Skipped: Bad data"


# Every key the page receives, in order (captured before the desk's own handler).
RECORD_KEYS = "() => { window.__keys = []; document.addEventListener('keydown', (e) => window.__keys.push(e.key), true); }"


def test_a_lead_cycle_is_four_keys_and_the_desk_says_how_long_the_call_lasted(page: Page, desk):
    """From a previewed lead to the next one: D, E, a disposition's key, Enter, and nothing else
    (no click, no other key, no field focused first). After End the desk says how long the
    call lasted, a real talk time."""
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, desk.campaigns["ryng"])
    lead_id = page.locator("#desk-preview").get_attribute("data-lead-id")
    desk.outcome(number, agent_ring_seconds=1, ring_seconds=1)
    name = page.locator(".disp-name").get_by_text("Not interested", exact=True)
    key = page.locator("label.disp").filter(has=name).locator("kbd").inner_text()
    page.evaluate(RECORD_KEYS)

    page.keyboard.press("d")
    expect(page.locator("#call-state")).to_have_text("Connected", timeout=30_000)
    expect(page.locator(".timer")).to_have_text("0:02", timeout=10_000)  # they talk a moment
    page.keyboard.press("e")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    expect(page.locator("#call-sub")).to_contain_text("pick a disposition")
    expect(page.locator("#call-talk-time")).to_have_text(re.compile(r"^0:(0[1-9]|[1-5]\d)$"))
    page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(page.locator("#desk-preview")).not_to_have_attribute("data-lead-id", lead_id, timeout=30_000)
    expect(page.locator("#lead-number")).to_be_visible()

    assert page.evaluate("window.__keys") == ["d", "e", key, "Enter"]
    call = Call.objects.filter(number=number).order_by("-id").first()
    assert call.state == CallState.DISPOSED and call.disposition.name == "Not interested"
    assert call.talk_time not in ("", "0:00")


def test_a_dropped_socket_comes_back_with_the_state_it_missed(page: Page, desk):
    """The network goes mid-call: the desk says so, the call connects meanwhile (that frame is
    lost), and when the network returns the socket's first frame shows what it missed, with the
    notes the agent was typing still there."""
    net = DeskSocket(page)
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, desk.campaigns["ryng"])
    desk.outcome(number, agent_ring_seconds=100, ring_seconds=300)
    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_have_text(PROGRESS, timeout=30_000)
    page.fill("#dispose-notes", "Asked about <b>roaming</b>")
    net.drop()
    expect(page.locator("#ws-banner")).to_be_visible()
    shot(page, "desk-disconnected")
    # Meanwhile the call connects: the frame is lost (nobody is listening).
    wait_call(number, {CallState.CONNECTED}, timeout=40)
    page.wait_for_timeout(300)
    expect(page.locator("#call-state")).not_to_contain_text("Connected")
    net.resume()
    expect(page.locator("#ws-banner")).to_be_hidden(timeout=90_000)
    expect(page.locator("#call-state")).to_contain_text("Connected")
    expect(page.locator("#btn-end")).to_be_enabled()
    expect(page.locator("#dispose-notes")).to_have_value("Asked about <b>roaming</b>")
    page.click("#btn-end")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    # The notes stay for this call's disposition, and are gone for the next call.
    pick(page, "Interested")
    expect(page.locator("#dispose-notes")).to_have_value("Asked about <b>roaming</b>")
    page.click("#btn-dispose")
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    expect(page.locator("#dispose-notes")).to_have_value("")
    call = Call.objects.filter(number=number).order_by("-id").first()
    assert call.state == CallState.DISPOSED and call.notes == "Asked about <b>roaming</b>"


def test_a_slow_reread_or_a_late_answer_never_undoes_the_desk(page: Page, desk):
    """Frames and answers arrive late on a real network. The desk must end on the newest state:
    a campaign picked and Ready pressed while the state re-read after a reconnect is still on its
    way, and a call that connected while the dial's own answer was still on its way."""
    campaign = desk.campaigns["ryng"]
    net = DeskSocket(page)
    rereads = SlowAnswers(page, re.compile(r".*/desk/state/.*"))
    sign_in(page, desk.base_url)
    expect(page.locator("#desk-preview")).to_contain_text("Pick a campaign")

    # The network blips; when it returns, the re-read of the desk is slow to arrive.
    net.drop()
    expect(page.locator("#ws-banner")).to_be_visible()
    net.hold()
    net.resume()
    deadline = time.monotonic() + 90
    while net.connects < 2 and not rereads.count() and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert net.connects >= 2 or rereads.count(), "the desk never reconnected"
    # Meanwhile the agent picks the campaign and goes Ready.
    page.select_option("#campaign-select", str(campaign.pk))
    page.click("#btn-ready")
    page.wait_for_timeout(500)
    # The slow re-read lands now, after the commands went through.
    net.release()
    rereads.release()
    expect(page.locator("#campaign-select")).to_have_value(str(campaign.pk))
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)
    page.wait_for_timeout(1500)
    expect(page.locator("#campaign-select")).to_have_value(str(campaign.pk))
    expect(page.locator("#desk-preview")).not_to_contain_text("Pick a campaign")
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")

    # The dial's own answer is slow; the call connects before it arrives.
    number = page.locator("#lead-number").inner_text().strip()
    desk.outcome(number, agent_ring_seconds=1, ring_seconds=1)
    dial_answers = SlowAnswers(page, re.compile(r".*/desk/leads/\d+/dial/"))
    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_contain_text("Connected", timeout=30_000)
    assert dial_answers.count() == 1
    dial_answers.release()
    page.wait_for_timeout(1500)
    expect(page.locator("#call-state")).to_contain_text("Connected")
    expect(page.locator("#desk-call")).to_have_attribute("data-state", "connected")


def test_a_frame_drawn_before_a_pick_never_takes_the_pick_back(page: Page, desk):
    """Not ready on one campaign, the agent picks another and presses Ready; a frame the server
    drew before the pick reached it lands in between (the answer to Not ready, on a slow link).
    The picker keeps the agent's pick, and Ready goes to the campaign picked."""
    ryng, huawei = desk.campaigns["ryng"], desk.campaigns["huawei"]
    net = DeskSocket(page)
    sign_in(page, desk.base_url)
    pick_and_go_ready(page, ryng)
    net.hold()
    page.click("#btn-not-ready")
    deadline = time.monotonic() + 30
    while not net.held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    page.wait_for_timeout(500)  # every frame the Not ready draws, drawn on Ryng
    stale = len(net.held)
    assert stale, "the Not ready was never answered"
    page.select_option("#campaign-select", str(huawei.pk))
    agent = Agent.objects.get(user__username="agent1")
    while time.monotonic() < deadline:
        agent.refresh_from_db()
        if agent.desk_campaign_id == huawei.pk:
            break
        page.wait_for_timeout(50)
    assert agent.desk_campaign_id == huawei.pk, "the pick never reached the server"

    net.release(stale)  # the frames drawn before the pick land now
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "not_ready")
    expect(page.locator("#campaign-select")).to_have_value(str(huawei.pk))
    page.click("#btn-ready")
    net.release()
    expect(page.locator("#platform-session")).to_contain_text("signed in", timeout=30_000)
    expect(page.locator("#campaign-select")).to_have_value(str(huawei.pk))
    agent.refresh_from_db()
    assert agent.desk_campaign_id == huawei.pk


def test_a_push_keeps_the_skip_form_the_agent_has_open(page: Page, desk):
    """Any change re-renders the call panel (the worker finishing the last call, a presence
    change) while the agent picks a skip reason: the form stays open with their reason, and Enter
    skips. When the desk's lead changes, the form for the old lead goes."""
    from agentdesk import live
    from campaigns.models import Lead

    campaign = desk.campaigns["ryng"]
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, campaign)
    page.keyboard.press("s")
    expect(page.locator("#skip-form")).to_be_visible()
    page.keyboard.press("3")
    expect(page.locator("#skip-form input[name=reason]").nth(2)).to_be_checked()

    agent = Agent.objects.get(user__username="agent1")
    page.evaluate("document.querySelector('#desk-call').dataset.marker = 'before-push'")
    live.send(live.agent_group(agent.pk), live.desk_event([live.CALL, live.PREVIEW]))
    # The panel was replaced (the marker is gone), and the form is still open on reason 3.
    expect(page.locator("#desk-call")).not_to_have_attribute("data-marker", "before-push")
    expect(page.locator("#skip-form")).to_be_visible()
    expect(page.locator("#skip-form input[name=reason]").nth(2)).to_be_checked()
    # Enter at once after the next such push, before htmx has settled the new panel.
    page.evaluate(ENTER_RIGHT_AFTER_A_PUSH)
    live.send(live.agent_group(agent.pk), live.desk_event([live.CALL]))
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    skipped = Call.objects.get(number=number, state=CallState.SKIPPED)
    assert skipped.notes == "Skipped: Bad data"

    # Open it again, then the lead goes elsewhere and another takes its place: the form closes.
    current = page.locator("#lead-number").inner_text().strip()
    page.keyboard.press("s")
    expect(page.locator("#skip-form")).to_be_visible()
    held = Lead.objects.get(campaign=campaign, number=current)
    other = campaign.leads.exclude(number__in=[number, current]).filter(lease_owner=None).first()
    Lead.objects.filter(pk=other.pk).update(lease_owner=agent, lease_expires_at=held.lease_expires_at)
    Lead.objects.filter(pk=held.pk).update(lease_owner=None, lease_expires_at=None)
    live.send(live.agent_group(agent.pk), live.desk_event([live.PREVIEW, live.CALL]))
    expect(page.locator("#lead-number")).to_have_text(other.number)
    expect(page.locator("#skip-form")).to_be_hidden()


def test_booking_a_callback_refuses_a_time_outside_the_window_then_books_it(page: Page, desk):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from campaigns.models import Campaign, Lead

    campaign = desk.campaigns["ryng"]
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, campaign)
    lead = Lead.objects.get(campaign=campaign, number=number)
    zone = ZoneInfo(lead.timezone)
    today = datetime.now(zone).date()
    # Calls are allowed today and tomorrow only (in the lead's zone): the day after is refused.
    days = {today.weekday(), (today + timedelta(days=1)).weekday()}
    Campaign.objects.filter(pk=campaign.pk).update(window_days="".join(str(d) for d in sorted(days)))
    desk.outcome(number, "busy", agent_ring_seconds=1, ring_seconds=100)
    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_contain_text("Failed: Busy", timeout=40_000)

    pick(page, "Call back")
    expect(page.locator("#desk-dispose .callback-row")).to_have_class(re.compile(r"\bactive\b"))
    refused = today + timedelta(days=2)
    page.fill("#dispose-callback", f"{refused:%Y-%m-%d}T10:00")
    page.fill("#dispose-notes", "Call me the day after tomorrow")
    page.click("#btn-dispose")
    expect(page.locator("#callback-error")).to_contain_text("Outside the lead's calling window")
    expect(page.locator("#callback-error")).to_contain_text("is not a calling day")
    # Nothing was recorded, and what the agent typed is still there.
    assert Call.objects.filter(number=number).order_by("-id").first().state != CallState.DISPOSED
    expect(page.locator("#dispose-notes")).to_have_value("Call me the day after tomorrow")

    booked = datetime.combine(today + timedelta(days=1), datetime.min.time().replace(hour=10), zone)
    page.fill("#dispose-callback", f"{booked:%Y-%m-%dT%H:%M}")
    page.click("#btn-dispose")
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    lead.refresh_from_db()
    assert lead.status == Lead.Status.CALLBACK
    assert lead.next_attempt_at == booked
    call = Call.objects.filter(number=number).order_by("-id").first()
    assert call.state == CallState.DISPOSED and call.callback_at == booked


@pytest.mark.parametrize(
    "platform,setting,code", [("huawei", "huawei_password", "100-004"), ("genesys", "genesys_password", "20")]
)
def test_a_platform_refusal_is_shown_in_plain_words_and_the_desk_stays_not_ready(
    page: Page, desk, platform, setting, code
):
    campaign = desk.campaigns[platform]
    sign_in(page, desk.base_url)
    desk.emulator.control("POST", "config", {setting: "changed-by-the-platform"})
    page.select_option("#campaign-select", str(campaign.pk))
    expect(page.locator("#desk-preview")).to_contain_text("not taking leads")
    page.click("#btn-ready")
    alert = page.locator("#desk-alert")
    expect(alert).to_be_visible()
    expect(alert.locator(".alert-code")).to_have_text(f"code {code}")
    expect(alert.locator(".alert-text")).to_contain_text(re.compile(r"password|credentials", re.I))
    expect(page.locator("#desk-presence")).not_to_have_attribute("data-presence", "ready")
    if platform == "huawei":
        shot(page, "desk-platform-refusal")
    # The platform takes the agent again: the same button now works.
    desk.emulator.control("POST", "config", {setting: "demo"})
    page.click("#btn-ready")
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)


@pytest.mark.parametrize(
    "platform,path,not_ready,said",
    [
        ("huawei", "huawei/agents/101/state", {"state": "busy"}, "Set Not ready on the platform."),
        (
            "genesys",
            "genesys/users/agent1/state",
            {"state": "NotReady", "reason": "Coaching"},
            "Set Not ready on the platform (Coaching).",
        ),
    ],
)
def test_a_supervisor_setting_the_agent_not_ready_on_the_platform_shows_on_the_desk(
    page: Page, desk, platform, path, not_ready, said
):
    """What the agent sees when a supervisor changes their state on the platform itself: the
    desk follows without a reload and says why in plain words; Ready works again afterwards."""
    sign_in(page, desk.base_url)
    pick_and_go_ready(page, desk.campaigns[platform])  # the offer came over the stream: it is live
    doc = page.evaluate(WATCH)
    desk.emulator.control("POST", path, not_ready)
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "not_ready", timeout=30_000)
    expect(page.locator("#desk-alert .alert-text")).to_have_text(said)
    assert page.evaluate("window.__deskDoc") == doc, "the page reloaded"
    if platform == "genesys":
        shot(page, "desk-set-on-the-platform")
    page.click("#btn-ready")
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")
    expect(page.locator("#lead-number")).to_be_visible(timeout=30_000)
    # Our own Ready's echo does not knock the agent out again.
    page.wait_for_timeout(2000)
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "ready")


def test_a_reload_or_a_second_tab_mid_call_keeps_the_notes_and_the_disposition(page: Page, desk):
    """What the agent typed and chose during a call is kept on the server as they type: a reload
    brings it back, a second tab shows it, and the next call starts empty."""
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, desk.campaigns["ryng"])
    desk.outcome(number, agent_ring_seconds=1, ring_seconds=1)
    page.click("#btn-dial")
    expect(page.locator("#call-state")).to_contain_text("Connected", timeout=30_000)
    page.fill("#dispose-notes", "Call back <i>after</i> lunch")
    pick(page, "Not interested")

    def drafted() -> bool:
        call = Call.objects.filter(number=number).order_by("-id").first()
        draft = (call.draft or {}) if call else {}
        return draft.get("notes") == "Call back <i>after</i> lunch" and bool(draft.get("disposition"))

    deadline = time.monotonic() + 10
    while not drafted():
        assert time.monotonic() < deadline, "the draft never reached the server"
        page.wait_for_timeout(100)

    page.reload()
    desk_synced(page)
    expect(page.locator("#call-state")).to_contain_text("Connected")
    expect(page.locator("#dispose-notes")).to_have_value("Call back <i>after</i> lunch")
    chosen = page.locator("label.disp").filter(
        has=page.locator(".disp-name").get_by_text("Not interested", exact=True)
    )
    expect(chosen.locator("input")).to_be_checked()

    second = page.context.new_page()
    second.goto(f"{desk.base_url}/desk/")
    desk_synced(second)
    expect(second.locator("#dispose-notes")).to_have_value("Call back <i>after</i> lunch")
    chosen_there = second.locator("label.disp").filter(
        has=second.locator(".disp-name").get_by_text("Not interested", exact=True)
    )
    expect(chosen_there.locator("input")).to_be_checked()
    expect(second.locator("#desk-dispose input[name=disposition]:checked")).to_have_count(1)
    second.close()

    page.click("#btn-end")
    expect(page.locator("#call-state")).to_contain_text("Call ended", timeout=30_000)
    page.click("#btn-dispose")
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    expect(page.locator("#dispose-notes")).to_have_value("")
    done = Call.objects.filter(number=number).order_by("-id").first()
    assert done.state == CallState.DISPOSED and done.notes == "Call back <i>after</i> lunch"
    assert done.disposition.name == "Not interested"

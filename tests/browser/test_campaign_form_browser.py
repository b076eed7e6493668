"""The campaign form's disposition rows in Chromium (static/js/supervisor.js): a supervisor adds a
row, gives it a key, moves it up, removes another and saves; the agent's desk then shows the
dispositions in that order with their keys, and the new one's key picks it after a call. An
agent is refused the form. The admin wears the product's top bar and type."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect

from calls.models import Call, CallState
from tests.browser.conftest import supervisor_page
from tests.browser.test_csp_browser import sign_in_as
from tests.browser.test_desk_browser import desk_synced, keyboard_call, shot, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def row_named(page: Page, name: str):
    return page.locator("[data-disp-row]").filter(has=page.locator(f'input[name$="-name"][value="{name}"]'))


def test_a_supervisor_adds_and_moves_a_disposition_and_the_desk_follows(page: Page, desk):
    campaign = desk.campaigns["ryng"]
    before = [d.name for d in campaign.dispositions.all()]
    assert before == ["Interested", "Not interested", "No answer", "Call back", "Wrong number", "Do not call"]
    form = supervisor_page(page.context, desk.base_url, f"/supervisor/campaigns/{campaign.pk}/edit/")
    rows = form.locator("[data-disp-row]:visible")
    expect(rows).to_have_count(6 + 2)  # the saved ones and two empty rows

    form.get_by_role("button", name="Add a disposition").click()
    new = form.locator("[data-disp-row]").filter(has=form.locator("#id_disp-8-name"))
    expect(new.locator('input[name$="-name"]')).to_be_focused()
    new.locator('input[name$="-name"]').fill("Sale")
    new.locator('input[name$="-key"]').fill("7")
    new.locator('input[name$="-is_conversion"]').check()
    # Up past the two empty rows and "Do not call".
    for _ in range(3):
        new.get_by_role("button", name="Move up").click()
    row_named(form, "Wrong number").get_by_role("button", name="Remove").click()
    expect(row_named(form, "Wrong number")).to_be_hidden()
    shown = rows.locator('input[name$="-name"]').evaluate_all("inputs => inputs.map(i => i.value)")
    assert shown == ["Interested", "Not interested", "No answer", "Call back", "Sale", "Do not call", "", ""]
    places = rows.locator('input[name$="-ORDER"]').evaluate_all("inputs => inputs.map(i => i.value)")
    assert places == [str(n) for n in range(1, 9)]
    # An empty key shows the digit the desk will give it.
    expect(row_named(form, "Do not call").locator('input[name$="-key"]')).to_have_attribute(
        "placeholder", "5"
    )
    shot(form, "campaign-dispositions")
    form.get_by_role("button", name="Save campaign").click()
    expect(form.locator(".messages")).to_contain_text("Campaign saved.")
    after = [(d.name, d.key, d.is_conversion) for d in campaign.dispositions.all()]
    assert after == [
        ("Interested", "", True),  # the demo counts it as a conversion
        ("Not interested", "", False),
        ("No answer", "", False),
        ("Call back", "", False),
        ("Sale", "7", True),
        ("Do not call", "", False),
    ]
    form.close()

    page.context.clear_cookies()  # the supervisor signed in on this browser
    sign_in(page, desk.base_url)
    page.goto(f"{desk.base_url}/desk/?campaign={campaign.pk}")
    desk_synced(page)
    choices = page.locator("#desk-dispose label.disp")
    expect(choices.locator(".disp-name")).to_have_text(
        ["Interested", "Not interested", "No answer", "Call back", "Sale", "Do not call"]
    )
    expect(choices.locator("kbd")).to_have_text(["1", "2", "3", "4", "7", "5"])

    # The key picks it after a call.
    number = keyboard_call(page, desk)
    page.keyboard.press("7")
    expect(choices.filter(has_text="Sale").locator("input")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#lead-number")).not_to_have_text(number, timeout=30_000)
    call = Call.objects.filter(number=number).order_by("-id").first()
    assert call.state == CallState.DISPOSED and call.disposition.name == "Sale"

    # An agent is refused the campaign form.
    refused = page.goto(f"{desk.base_url}/supervisor/campaigns/{campaign.pk}/edit/")
    assert refused is not None and refused.status == 403


def test_the_admin_wears_the_products_top_bar_and_type(page: Page, desk):
    sign_in_as(page, desk.base_url, "admin")
    answer = page.goto(f"{desk.base_url}/admin/")
    assert answer is not None and answer.ok
    bar = page.locator("header.topbar")
    expect(bar.locator(".brand")).to_have_text("AgentDesk")
    expect(bar.locator(".topnav")).to_contain_text("Admin")
    expect(bar.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#header")).to_have_count(0)  # Django's own header is gone
    font = page.evaluate("getComputedStyle(document.body).fontFamily")
    assert font.startswith("-apple-system")
    link = page.locator("#content th[scope=row] a").first
    assert link.evaluate("a => getComputedStyle(a).color") == "rgb(36, 87, 197)"  # the app's accent
    shot(page, "admin")
    # A long page (a change form) keeps the whole bar.
    page.goto(f"{desk.base_url}/admin/calls/telephonyaccount/{desk.campaigns['ryng'].account_id}/change/")
    assert bar.evaluate("h => h.getBoundingClientRect().height") == 44  # --topbar-h
    expect(bar.locator(".brand")).to_have_css("text-decoration-line", "none")
    bar.locator(".brand").click()
    expect(page).to_have_url(f"{desk.base_url}/admin/")  # home, for someone who only administers

    # A supervisor with admin rights goes back to the floor from the admin's top bar.
    get_user_model().objects.filter(username="supervisor").update(is_staff=True)
    sign_in_as(page, desk.base_url, "supervisor")
    page.goto(f"{desk.base_url}/admin/")
    bar.get_by_role("link", name="Campaigns").click()
    expect(page).to_have_url(f"{desk.base_url}/supervisor/")

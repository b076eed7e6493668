"""The desk holds still: switching to a platform with sessions (its "signed in" pill appears)
never moves the presence buttons, and the two columns end on one line, on a laptop screen and a
wide one, with a lead previewed and during a call's disposition; the skip form leaves the call's
status in sight."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from campaigns.models import Campaign
from tests.browser.test_desk_browser import pick_and_go_ready, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def box(page: Page, selector: str) -> dict:
    """The element's box, once it holds still in the page (a pushed frame may replace it between
    two reads: read again)."""
    for _ in range(50):
        page.locator(selector).wait_for(state="visible")
        found = page.locator(selector).bounding_box()
        if found is not None:
            return found
        page.wait_for_timeout(100)
    raise AssertionError(f"{selector} never held still")


def columns_end_together(page: Page) -> None:
    left = box(page, "#desk-preview")
    right = box(page, "#desk-dispose")
    assert abs((left["y"] + left["height"]) - (right["y"] + right["height"])) <= 1.5, (left, right)


@pytest.mark.parametrize("width", [1366, 1920])
def test_the_presence_buttons_and_the_columns_hold_still(page: Page, desk, width):
    page.set_viewport_size({"width": width, "height": 900})
    sign_in(page, desk.base_url)
    before = box(page, "#btn-ready")
    pick_and_go_ready(page, desk.campaigns["ryng"])
    columns_end_together(page)
    assert box(page, "#btn-ready")["x"] == before["x"]

    # Not ready, then a Huawei campaign: signing in there shows its session pill.
    page.click("#btn-not-ready")
    expect(page.locator("#desk-presence")).to_have_attribute("data-presence", "not_ready")
    page.select_option("#campaign-select", str(desk.campaigns["huawei"].pk))
    page.click("#btn-ready")
    expect(page.locator("#platform-session")).to_contain_text("signed in", timeout=30_000)
    assert box(page, "#btn-ready")["x"] == before["x"], "the pill moved the presence buttons"
    columns_end_together(page)


# True when the element's centre shows the element itself (nothing drawn over it, not scrolled away).
IN_SIGHT = """(selector) => {
  const el = document.querySelector(selector);
  const r = el.getBoundingClientRect();
  return el.contains(document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2));
}"""


def test_the_skip_form_leaves_the_call_status_in_sight(page: Page, desk):
    """S opens the skip form inside the call panel: the call's status (its state and the number
    to dial) stays in sight above it, nothing moves, and the form's own buttons are in sight."""
    sign_in(page, desk.base_url)
    number = pick_and_go_ready(page, desk.campaigns["ryng"])
    expect(page.locator("#call-sub")).to_have_text(f"Ready to dial {number}")
    panel, status = box(page, "#desk-call"), box(page, "#call-state")
    page.keyboard.press("s")
    expect(page.locator("#skip-form")).to_be_visible()
    for selector in ("#call-state", "#call-sub", "#skip-form legend", "#skip-other", "#btn-skip-confirm"):
        assert page.evaluate(IN_SIGHT, selector), f"{selector} is covered"
    assert box(page, "#desk-call") == panel and box(page, "#call-state") == status
    expect(page.locator("#call-state")).to_have_text("Previewing")
    # Esc shuts it: the actions it stood over take clicks again.
    page.keyboard.press("Escape")
    expect(page.locator("#skip-form")).to_be_hidden()
    for selector in ("#btn-dial", "#btn-skip"):
        assert page.evaluate(IN_SIGHT, selector), f"{selector} is covered"


# The picker's width against the width the browser gives it with no limits (a select's natural
# width is its longest label's, with its padding and arrow).
PICKER_WIDTHS = """() => {
  const select = document.querySelector('#campaign-select');
  const free = select.cloneNode(true);
  free.removeAttribute('id');
  free.style.cssText = 'position: absolute; visibility: hidden; width: auto; min-width: 0; max-width: none';
  select.parentNode.appendChild(free);
  const widths = [select.clientWidth, free.clientWidth];
  free.remove();
  return widths;
}"""


def test_the_campaign_picker_shows_its_longest_label_whole(page: Page, desk):
    """A long campaign name on Huawei: "<name> · Huawei CC-Gateway" is not cut, on a laptop screen."""
    huawei = desk.campaigns["huawei"]
    Campaign.objects.filter(pk=huawei.pk).update(name="Enterprise renewals, second wave (EMEA)")
    sign_in(page, desk.base_url)
    page.select_option("#campaign-select", str(huawei.pk))
    label = page.locator("#campaign-select option:checked")
    expect(label).to_have_text("Enterprise renewals, second wave (EMEA) · Huawei CC-Gateway")
    shown, needed = page.evaluate(PICKER_WIDTHS)
    assert shown >= needed, f"the picker is {shown}px wide, its longest label needs {needed}px"

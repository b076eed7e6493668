"""Ryng callbacks through the real URL: the seeds' bodies replayed (with their repeated keys and
missing comma), duplicates and late callbacks applied once, wrong secrets 404, unknown calls 200."""

from __future__ import annotations

import pytest
from django.utils import timezone

from calls.models import Call, CallEvent, CallState, DialAttempt
from tests.calls.conftest import FIXTURES

pytestmark = pytest.mark.django_db


def _body(name: str, call_id: int | None = None) -> str:
    text = (FIXTURES / "ryng" / name).read_text()
    if call_id is not None:
        # The seeds use callIDs 131 (connect) and 28 (terminal); make them one call.
        text = text.replace('"callID": 131', f'"callID": {call_id}').replace(
            '"callID": 28', f'"callID": {call_id}'
        )
    return text


def _post(client, account, kind: str, body: str, query: str = ""):
    url = f"/calls/hooks/ryng/{account.webhook_secret}/{kind}{query}"
    return client.post(url, data=body, content_type="application/json")


@pytest.fixture
def live_call(ryng_lead, alice) -> Call:
    return Call.objects.create(
        lead=ryng_lead,
        campaign=ryng_lead.campaign,
        agent=alice,
        account=ryng_lead.campaign.account,
        state=CallState.DIALING,
        number=ryng_lead.number,
        platform_call_id="131",
        state_changed_at=timezone.now(),
    )


def test_seed_callbacks_replayed_in_order(client, live_call):
    account = live_call.account
    assert _post(client, account, "connect", _body("connect_callback.txt", 131)).status_code == 200
    live_call.refresh_from_db()
    assert live_call.state == CallState.AGENT_CONNECTED  # the first of the repeated "event" keys
    assert (
        _post(client, account, "connect", _body("customer_connected_callback.json", 131)).status_code == 200
    )
    live_call.refresh_from_db()
    assert live_call.state == CallState.CONNECTED and live_call.connected_at
    terminal = _body("terminal_callback.txt", 131)  # the seed's missing comma included
    assert _post(client, account, "terminal", terminal).status_code == 200
    live_call.refresh_from_db()
    assert live_call.state == CallState.ENDED
    assert live_call.talk_seconds == 5 and live_call.recording_url.endswith(".mp3")
    assert live_call.platform_log_id == "64"
    events = CallEvent.objects.filter(call=live_call)
    assert events.count() == 3 and all(e.applied for e in events)
    assert '"event": "call-ended"\n' in events.last().raw  # the raw body is kept as received


def test_duplicate_and_late_callbacks_change_nothing_twice(client, live_call):
    account = live_call.account
    terminal = _body("terminal_callback.json", 131)
    for _ in range(3):  # Ryng retries a terminal callback up to twice more
        assert _post(client, account, "terminal", terminal).status_code == 200
    late = _body("connect_callback.json", 131)
    assert _post(client, account, "connect", late).status_code == 200
    live_call.refresh_from_db()
    assert live_call.state == CallState.ENDED
    assert CallEvent.objects.filter(account=account, key__contains="call-ended").count() == 1
    assert CallEvent.objects.get(account=account, key__endswith="agent-connected").applied is False


def test_wrong_secret_is_404_and_stores_nothing(client, ryng_account, live_call):
    response = client.post(
        "/calls/hooks/ryng/not-the-secret/terminal",
        data=_body("terminal_callback.json", 131),
        content_type="application/json",
    )
    assert response.status_code == 404
    assert not CallEvent.objects.exists()
    assert client.get(f"/calls/hooks/ryng/{ryng_account.webhook_secret}/terminal").status_code == 405


def test_unknown_call_is_answered_200_and_kept(client, ryng_account):
    response = _post(client, ryng_account, "terminal", _body("terminal_callback.json", 424242))
    assert response.status_code == 200
    event = CallEvent.objects.get(account=ryng_account)
    assert event.call is None and not event.applied and event.raw


def test_unreadable_body_is_stored_raw_and_answered_200(client, ryng_account):
    assert _post(client, ryng_account, "connect", "{not json at all").status_code == 200
    assert _post(client, ryng_account, "connect", "{not json at all").status_code == 200
    event = CallEvent.objects.get(account=ryng_account)
    assert event.kind == "unreadable" and event.raw == "{not json at all"


def test_call_key_in_the_url_finds_a_call_whose_dial_answer_was_lost(client, ryng_lead, alice):
    call = Call.objects.create(
        lead=ryng_lead,
        campaign=ryng_lead.campaign,
        agent=alice,
        account=ryng_lead.campaign.account,
        state=CallState.DIAL_REQUESTED,
        number=ryng_lead.number,
        state_changed_at=timezone.now(),
    )
    DialAttempt.objects.create(
        call=call,
        key=f"dial:{call.key}",
        tries=1,
        status=DialAttempt.Status.AMBIGUOUS,
        error_code="no_lookup",
        error_message="Waiting for the platform's callbacks.",
    )
    assert (
        _post(
            client, call.account, "connect", _body("connect_callback.json", 555), f"?call={call.key}"
        ).status_code
        == 200
    )
    call.refresh_from_db()
    assert call.platform_call_id == "555" and call.state == CallState.AGENT_CONNECTED
    assert call.dial_attempt.status == DialAttempt.Status.PLACED
    assert (call.dial_attempt.error_code, call.dial_attempt.error_message) == ("", "")  # no stale doubt


def test_a_terminal_callback_alone_still_tells_when_the_customer_connected(client, live_call):
    """The connect callbacks were dropped: the terminal one's callStarted (seed 000) becomes the
    call's connect moment, so its talk figures add up."""
    assert (
        _post(client, live_call.account, "terminal", _body("terminal_callback.json", 131)).status_code == 200
    )
    live_call.refresh_from_db()
    assert live_call.connected_at.isoformat() == "2023-01-19T08:07:07+00:00"
    assert live_call.talk_seconds == 5

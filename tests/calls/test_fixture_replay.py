"""The seeds' Huawei events and GWS CometD message, replayed through parse + call_apply_signal:
applied to the right call, in order, each once, never backwards."""

import json

import pytest

from calls.models import CallEvent, CallState, Platform
from calls.providers import get_provider
from calls.services import call_apply_signal
from tests.calls.conftest import FIXTURES, make_account, make_campaign, make_live_call

pytestmark = pytest.mark.django_db


def fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def replay(account, agent, payload) -> None:
    provider = get_provider(account.config())
    for signal in provider.parse(payload):
        call_apply_signal(
            account=account, signal=signal, source="stream", raw=json.dumps(payload), agent=agent
        )


def test_huawei_seed_events_drive_the_call_and_repeats_change_nothing(alice):
    account = make_account(Platform.HUAWEI, "http://127.0.0.1:9")
    call = make_live_call(make_campaign(account, "demo"), alice, platform_call_id="1455885056-1095")
    steps = [
        ("huawei/event_phone_alerting.json", CallState.AGENT_RINGING),
        ("huawei/event_customer_alerting.json", CallState.CUSTOMER_RINGING),
        ("huawei/event_talking.json", CallState.CONNECTED),
        ("huawei/event_call_release.json", CallState.ENDED),
    ]
    for name, state in steps:
        replay(account, alice, fixture(name)["event"])
        call.refresh_from_db()
        assert call.state == state, name
    events = CallEvent.objects.filter(call=call).count()
    replay(account, alice, fixture("huawei/event_talking.json")["event"])  # late and repeated
    call.refresh_from_db()
    assert call.state == CallState.ENDED
    assert CallEvent.objects.filter(call=call).count() == events


def test_genesys_seed_cometd_message_applies_to_its_call(alice):
    account = make_account(Platform.GENESYS, "http://127.0.0.1:9")
    campaign = make_campaign(account, "DemoPreview")
    seed = make_live_call(
        campaign, alice, platform_call_id="013V08JRL498H1OI04000VTAES00000G", number="+12125550101"
    )
    other = make_live_call(
        campaign, alice, platform_call_id="C387BQF9X00NHKFGMGVZPEN08THAEB1Y", number="+12125550102"
    )
    seed.state = CallState.DIAL_REQUESTED
    seed.save(update_fields=["state"])
    replay(account, alice, fixture("genesys/seed_004_cometd_message.json"))
    seed.refresh_from_db()
    assert seed.state == CallState.DIALING
    replay(account, alice, fixture("genesys/call_established.json"))
    replay(account, alice, fixture("genesys/call_released_answered.json"))
    other.refresh_from_db()
    assert other.state == CallState.ENDED and other.connected_at is not None
    replay(account, alice, fixture("genesys/seed_004_cometd_message.json"))  # a repeat
    seed.refresh_from_db()
    assert seed.state == CallState.DIALING
    assert CallEvent.objects.filter(call=seed).count() == 1

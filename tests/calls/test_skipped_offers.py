"""A record the agent skipped is never offered to them again in that platform session, whatever
the platform puts back in its pool: over the real emulators and the real ``run_streams``
(``live_stack``). The re-offer is given back through the platform's own skip, recorded as a
skip, and never reaches the desk; when only skipped records are left, a Ready agent is left Not
ready and told why instead of being handed them back for ever."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from agentdesk import services as desk
from agentdesk.models import Presence
from calls.models import Call, CallState
from calls.services.signals import OFFERED_AGAIN, ONLY_SKIPPED_LEFT, ONLY_SKIPPED_REASON
from campaigns.models import Lead
from tests.calls.test_live import desk_socket, wait_until
from tests.calls.test_streams import offered_lead
from tests.calls.test_streams_presence import (
    desk_told,
    drain,
    genesys_desk,
    huawei_desk,
    load_record,
    presence,
    quiet_platforms,  # noqa: F401 - autouse: the platforms settle before the flush
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SKIPPED_NAME = "Skipped Sam"
DIAL_LINK = re.compile(r"/desk/leads/(\d+)/dial/")


def previewed(agent) -> set[int]:
    """The leads the agent's desk offers to dial, as the desk page shows it over HTTP."""
    client = Client()
    client.force_login(agent.user)
    return {int(pk) for pk in DIAL_LINK.findall(client.get("/desk/").content.decode())}


def dial_links(frames: list[str]) -> set[int]:
    return {int(pk) for frame in frames for pk in DIAL_LINK.findall(frame)}


def given_back(agent) -> list[Call]:
    return list(Call.objects.filter(agent=agent, state=CallState.SKIPPED, notes=OFFERED_AGAIN).order_by("id"))


def held_by(agent) -> list[Lead]:
    return list(Lead.objects.filter(lease_owner=agent))


def test_huawei_a_skipped_record_the_gateway_queues_again_never_reaches_the_desk(live_stack, emulator):
    alice, _, campaign = huawei_desk(emulator)
    call_data = json.dumps({"name": SKIPPED_NAME})
    ws = desk_socket(live_stack, alice)
    try:
        emulator.control(
            "POST", "huawei/campaigns", {"records": [{"numbers": ["2125550100"], "callData": call_data}]}
        )
        skipped = offered_lead(alice)
        assert skipped.name == SKIPPED_NAME
        desk.lead_skip(agent=alice, lead=skipped, reason="Bad data")

        # The skip's saybusy puts the record at the back of the gateway's queue and its sayfree
        # hands it straight back, under a new controlid: given back, and as nothing else is left,
        # the agent is left Not ready and told why.
        desk_told(ws, ONLY_SKIPPED_LEFT, "not_ready")
        assert presence(alice) == (Presence.NOT_READY, ONLY_SKIPPED_REASON)
        assert len(given_back(alice)) == 1 and held_by(alice) == []
        assert previewed(alice) == set()
        assert emulator.control("GET", "huawei/agents")["101"]["ready"] is False
        assert [r["numbers"] for r in emulator.control("GET", "huawei/campaigns")] == [["2125550100"]]

        # A new record arrives and the agent is Ready again: the gateway offers the skipped one
        # first; it is given back with the agent kept Ready, and the new one reaches the desk.
        emulator.control("POST", "huawei/campaigns", {"records": [{"numbers": ["2125550101"]}]})
        desk.agent_set_presence(agent=alice, presence=Presence.READY, campaign=campaign)
        fresh = offered_lead(alice, exclude=(skipped.pk,))
        assert fresh.raw_number == "2125550101"
        assert len(given_back(alice)) == 2 and held_by(alice) == [fresh]
        assert presence(alice) == (Presence.READY, "")
        assert previewed(alice) == {fresh.pk}
        assert dial_links(drain(ws)) <= {skipped.pk, fresh.pk}  # never a re-offer
    finally:
        ws.close()


def test_genesys_a_skipped_record_rescheduled_for_now_is_never_offered_again(live_stack, emulator):
    alice, _, campaign = genesys_desk(live_stack, emulator)
    # A campaign with no retry delay: the skip's RescheduleRecord makes the record due at once,
    # and GWS hands due records out first.
    campaign.retry_delay_minutes = 0
    campaign.save(update_fields=["retry_delay_minutes"])
    load_record(emulator, "2125550100")
    ws = desk_socket(live_stack, alice)
    try:
        desk.desk_fill(agent=alice, campaign=campaign)
        skipped = offered_lead(alice)
        handle = str(skipped.offer["recordHandle"])
        desk.lead_skip(agent=alice, lead=skipped, reason="Bad data")
        desk.desk_fill(agent=alice, campaign=campaign)  # the desk's next look for a lead

        def history() -> list[str]:
            return emulator.control("GET", "genesys/state")["records"][handle]["history"]

        # The desk asked for the next record: GWS handed the skipped one again; it went back
        # (RescheduleRecord once more) and never became the agent's lead.
        wait_until(lambda: given_back(alice), timeout=30, what="the re-offer given back")
        wait_until(
            lambda: sum(h.startswith("rescheduled:Campaign:") for h in history()) == 2,
            timeout=20,
            what="the re-offered record rescheduled again",
        )
        assert history().count("handed") == 2
        assert held_by(alice) == []
        # And its next look: the same again, and again given back.
        desk.desk_fill(agent=alice, campaign=campaign)
        wait_until(lambda: len(given_back(alice)) == 2, timeout=30, what="the second re-offer given back")
        assert held_by(alice) == []
        assert presence(alice)[0] == Presence.READY  # GWS skips never touch the agent state
        assert dial_links(drain(ws)) <= {skipped.pk}  # never a re-offer
        assert previewed(alice) == set()
    finally:
        ws.close()

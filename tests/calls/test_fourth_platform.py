"""A fourth platform, added the way docs/providers.md's checklist says: an adapter and its
registry line, nothing else. Its agents sign in, ``run_streams`` follows their sessions with the
loop its ``event_stream`` names, and its offers become leads on the right campaign."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from calls import providers, selectors, services, streams
from calls.models import PlatformIdentity, PlatformSession, TelephonyAccount
from calls.providers.base import POLL, AgentLogin, DialRequest, DialResult, Provider, Signal
from campaigns.models import Lead
from tests.calls.conftest import make_campaign

pytestmark = pytest.mark.django_db(transaction=True)


class PagerProvider(Provider):
    """A made-up platform whose seats sign in, are offered leads and are followed by a poll."""

    platform = "pager"
    label = "Pager"
    base_url_hint = "…/api"
    campaign_ref_hint = "list name"
    agent_sessions = True
    offers_leads = True
    event_stream = POLL
    identity_fields: ClassVar[Mapping[str, str]] = {"ref": "Pager seat", "phone": "Pager extension"}

    # What the test feeds the poll, and sees of the platform.
    events: ClassVar[list[dict[str, Any]]] = []
    signed_in: ClassVar[list[AgentLogin]] = []
    drained: ClassVar[threading.Event] = threading.Event()

    def sign_in(self, agent: AgentLogin) -> None:
        self.state["token"] = f"t-{agent.ref}"
        self.signed_in.append(agent)

    def signed_in_state(self) -> str:
        return "not_ready"

    def poll_event(self, agent: AgentLogin, timeout: float | None = None) -> Any:
        if self.events:
            return self.events.pop(0)
        self.drained.set()
        return None

    def dial(self, request: DialRequest) -> DialResult:
        raise NotImplementedError

    def hang_up(self, agent: AgentLogin, call_id: str, *, log_id: str = "") -> None:
        raise NotImplementedError

    def parse(self, payload: Any) -> list[Signal]:
        if isinstance(payload, dict) and payload.get("type") == "lead":
            # The engine's normalized offer keys: the base parse_offer reads them.
            data = {
                "number": payload["tel"],
                "name": payload["who"],
                "custom_fields": {"Plan": payload["plan"]},
                "campaign": payload["list"],
                "lead_id": payload["id"],
            }
            return [Signal(kind="offer", key=f"pager:offer:{payload['id']}", data=data, raw=payload)]
        return [Signal(kind="other", key=f"pager:other:{payload!r}"[:200], raw=payload)]


@pytest.fixture
def pager(monkeypatch):
    # The checklist's registry line.
    monkeypatch.setitem(providers.ADAPTERS, "pager", f"{__name__}.PagerProvider")
    PagerProvider.events.clear()
    PagerProvider.signed_in.clear()
    PagerProvider.drained.clear()
    account = TelephonyAccount(name="Pager", platform="pager", base_url="http://pager.invalid/api")
    account.credentials = {"agent_password": "pw"}
    account.save()
    return account


def test_a_fourth_platform_signs_in_and_its_offers_become_leads(pager, alice):
    make_campaign(pager, "other-list")
    campaign = make_campaign(pager, "spring-list")
    PlatformIdentity.objects.create(agent=alice, platform="pager", ref="seat-1", phone="42")

    services.platform_sign_in(agent=alice, account=pager)

    assert PagerProvider.signed_in == [AgentLogin(ref="seat-1", password="pw", phone="42")]
    session = PlatformSession.objects.get(agent=alice, account=pager)
    assert session.status == PlatformSession.Status.SIGNED_IN and session.state == {"token": "t-seat-1"}
    assert "pager" in streams.streamed_platforms()
    assert session in selectors.signed_in_sessions()
    assert pager.callback_urls() == {}  # it sends no callbacks

    PagerProvider.events.append(
        {
            "type": "lead",
            "id": 7,
            "tel": "2125550100",
            "who": "Ann Lee",
            "plan": "Gold",
            "list": "spring-list",
        }
    )
    loop = streams.LOOPS[PagerProvider.event_stream]
    loop(streams.StreamContext(session.pk, PagerProvider.drained))

    lead = Lead.objects.get(source=Lead.Source.PLATFORM)
    assert lead.campaign == campaign and lead.lease_owner == alice
    assert (lead.raw_number, lead.number, lead.name) == ("2125550100", "+12125550100", "Ann Lee")
    assert lead.custom_fields == {"Plan": "Gold"} and lead.offer["lead_id"] == 7


def test_a_platform_without_callbacks_has_no_webhook(pager, client):
    assert (
        client.post(
            f"/calls/hooks/pager/{pager.webhook_secret}/connect", data="{}", content_type="application/json"
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/calls/hooks/nowhere/{pager.webhook_secret}/connect", data="{}", content_type="application/json"
        ).status_code
        == 404
    )

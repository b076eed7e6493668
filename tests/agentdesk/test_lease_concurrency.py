"""Two agents asking for a lead at the same moment never get the same one (PostgreSQL:
``SELECT ... FOR UPDATE SKIP LOCKED``). The Makefile's CI runs the suite on PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from django.db import connection

from agentdesk.services import lead_next_for_agent
from campaigns.models import Lead
from tests.factories import make_campaign, make_leads, make_user_agent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

AGENTS = 8
ROUNDS = 5


@pytest.fixture(autouse=True)
def _postgres_only():
    if not settings.IS_POSTGRES:
        pytest.skip(
            "row locks with SKIP LOCKED need PostgreSQL; SQLite serialises writers instead (set DATABASE_URL)"
        )


def test_simultaneous_requests_never_share_a_lead():
    campaign = make_campaign()
    make_leads(campaign, AGENTS * ROUNDS + 3)
    agents = [make_user_agent(f"racer{n}", n) for n in range(AGENTS)]
    for _ in range(ROUNDS):
        barrier = threading.Barrier(AGENTS)
        got: dict[int, int | None] = {}
        errors: list[BaseException] = []

        def ask(agent, barrier=barrier, got=got, errors=errors):
            try:
                barrier.wait(timeout=10)
                lead = lead_next_for_agent(agent=agent, campaign=campaign)
                got[agent.pk] = lead.pk if lead else None
            except BaseException as exc:  # reported below
                errors.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=ask, args=(agent,)) for agent in agents]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not errors, errors
        leased = [pk for pk in got.values() if pk is not None]
        assert len(leased) == AGENTS, got
        assert len(set(leased)) == AGENTS, f"a lead went to two agents: {got}"
        owners = dict(Lead.objects.filter(pk__in=leased).values_list("pk", "lease_owner_id"))
        assert all(owners[lead_pk] == agent_pk for agent_pk, lead_pk in got.items())
        # Next round: everyone lets go of their lead (done with it).
        Lead.objects.filter(pk__in=leased).update(lease_owner=None, lease_expires_at=None, status="done")

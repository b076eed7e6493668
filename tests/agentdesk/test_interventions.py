"""A supervisor's interventions, as an outsider sees them: set an agent Not ready, sign them out
(on the platform too), release their leads, pause / resume a campaign, rotate an intake token.
Each is confirmed on the page, recorded with who and when (``AuditEntry``), told to the agent's
desk in plain words, and listed on ``/supervisor/audit/``; agents and anonymous users are refused.

What the desk is told is read the way the desk's socket renders it: the events the services emit
are captured (``live.emit``) and rendered by ``fragments.desk_event``, as the consumer does."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from agentdesk import fragments, live
from agentdesk import services as desk
from agentdesk.models import AuditEntry, Presence
from calls.models import CallState, Platform, PlatformSession
from campaigns.models import Campaign, Lead
from tests.agentdesk.conftest import login
from tests.calls.conftest import make_account
from tests.calls.conftest import make_campaign as make_platform_campaign
from tests.factories import make_call, make_campaign, make_user_agent


@pytest.fixture
def pushed(monkeypatch) -> list[tuple[str, dict]]:
    """Every live event the services emit, as (group, event), instead of sending it."""
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(live, "emit", lambda group, event: sent.append((group, event)))
    return sent


@pytest.fixture
def sam(supervisor):
    supervisor.user.first_name = "Sam"
    supervisor.user.save(update_fields=["first_name"])
    return supervisor.user


@pytest.fixture
def sam_client(sam) -> Client:
    client = Client(headers={"HX-Request": "true"})
    client.force_login(sam)
    return client


def desk_frames(pushed, agent) -> list[str]:
    """What the agent's open desks were sent, rendered as their socket renders it."""
    return [fragments.desk_event(agent.pk, e) for g, e in pushed if g == live.agent_group(agent.pk)]


def be(agent, presence: str, reason: str = "", campaign=None) -> None:
    agent.presence, agent.presence_reason = presence, reason
    agent.desk_campaign = campaign
    agent.save(update_fields=["presence", "presence_reason", "desk_campaign"])


def hold(agent, *leads) -> None:
    until = timezone.now() + timedelta(minutes=2)
    Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(lease_owner=agent, lease_expires_at=until)


# -- Not ready ---------------------------------------------------------------------------------------


def test_a_supervisor_sets_an_agent_not_ready_and_the_desk_says_who_and_why(
    agent, campaign, sam, sam_client, pushed
):
    be(agent, Presence.READY, campaign=campaign)
    board = sam_client.get("/supervisor/agents/").content.decode()
    url = f"/supervisor/agents/{agent.pk}/not-ready/"
    assert re.search(rf'hx-post="{url}"[^>]*hx-confirm="Set agent Not ready\?', board)

    answer = sam_client.post(url, {"reason": "Coaching"})

    assert answer.status_code == 200
    row = answer.content.decode()
    assert f'id="agent-row-{agent.pk}"' in row and "board-not_ready" in row and "Coaching" in row
    agent.refresh_from_db()
    assert (agent.presence, agent.presence_reason) == (Presence.NOT_READY, "Coaching")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.by, entry.by_name, entry.agent, entry.campaign) == (
        AuditEntry.Action.NOT_READY,
        sam,
        "Sam",
        agent,
        campaign,
    )
    assert entry.details == {"reason": "Coaching"} and entry.at <= timezone.now()
    frames = desk_frames(pushed, agent)
    told = [f for f in frames if "A supervisor (Sam) set you Not ready: Coaching." in f]
    assert told and 'data-presence="not_ready"' in told[-1]
    # The supervisors' board row follows (every open board re-renders it).
    assert (live.SUPERVISORS, {"type": live.BOARD_AGENT, "agent": agent.pk}) in pushed


def test_not_ready_is_refused_in_words_and_nothing_is_recorded(agent, campaign, leads, sam_client, pushed):
    url = f"/supervisor/agents/{agent.pk}/not-ready/"
    be(agent, Presence.READY, campaign=campaign)
    answer = sam_client.post(url, {"reason": "Sleeping"}).content.decode()
    assert "Pick a Not-ready reason from the list: Break, Lunch, Meeting, Training, Coaching." in answer
    # A supervisor names why: no reason is not taken as the list's first.
    answer = sam_client.post(url, {"reason": ""}).content.decode()
    assert "Pick a Not-ready reason from the list: Break, Lunch, Meeting, Training, Coaching." in answer
    be(agent, Presence.OFFLINE, campaign=campaign)
    assert "agent is offline." in sam_client.post(url, {"reason": "Break"}).content.decode()
    be(agent, Presence.ON_CALL, campaign=campaign)
    make_call(agent, leads[0], CallState.CONNECTED)
    assert "agent is on a call" in sam_client.post(url, {"reason": "Break"}).content.decode()
    agent.refresh_from_db()
    assert agent.presence == Presence.ON_CALL
    assert not AuditEntry.objects.exists()
    assert not desk_frames(pushed, agent)


# -- sign out ----------------------------------------------------------------------------------------


def test_a_supervisor_signs_an_agent_out_the_leads_go_back_and_the_desk_shows_offline(
    agent, campaign, leads, sam, sam_client, pushed
):
    be(agent, Presence.READY, campaign=campaign)
    hold(agent, leads[0])
    board = sam_client.get("/supervisor/agents/").content.decode()
    url = f"/supervisor/agents/{agent.pk}/sign-out/"
    assert re.search(rf'hx-post="{url}"[^>]*hx-confirm="Sign agent out\?', board)

    answer = sam_client.post(url)

    assert answer.status_code == 200 and "board-offline" in answer.content.decode()
    agent.refresh_from_db()
    assert agent.presence == Presence.OFFLINE
    assert Lead.objects.get(pk=leads[0].pk).lease_owner is None
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.by, entry.agent) == (AuditEntry.Action.SIGN_OUT, sam, agent)
    assert entry.details == {"released": 1, "platform_sessions_left": []}
    told = [f for f in desk_frames(pushed, agent) if "A supervisor (Sam) signed you out." in f]
    assert told and 'data-presence="offline"' in told[-1]
    # Signed out, nothing more to offer on the board row.
    assert "board-sign-out" not in answer.content.decode()


def test_sign_out_is_refused_during_a_call(agent, campaign, leads, sam_client, pushed):
    be(agent, Presence.ON_CALL, campaign=campaign)
    make_call(agent, leads[0], CallState.CONNECTED)
    answer = sam_client.post(f"/supervisor/agents/{agent.pk}/sign-out/").content.decode()
    assert "agent is on a call: try again when it ends." in answer
    assert not AuditEntry.objects.exists()


def ready_on(emulator, platform: str, campaign_ref: str):
    """alice (agent 1 on the emulators) Ready on a campaign of ``platform``, from her desk."""
    alice = make_user_agent("alice", 1)
    account = make_account(platform, emulator.url)
    campaign = make_platform_campaign(account, campaign_ref)
    desk.agent_select_campaign(agent=alice, campaign=campaign)
    desk.agent_set_presence(agent=alice, presence=Presence.READY)
    alice.refresh_from_db()
    assert alice.presence == Presence.READY
    return alice, account, campaign


def test_on_a_platform_with_agent_sessions_not_ready_and_sign_out_reach_the_platform(
    emulator, sam, sam_client, pushed
):
    """Huawei, over the emulator: Not ready is a saybusy, sign-out a logout, and the emulator
    sees the agent signed out."""
    emulator.huawei_quiet()
    alice, account, campaign = ready_on(emulator, Platform.HUAWEI, "demo-preview")  # workno 101
    agents = emulator.control("GET", "huawei/agents")
    assert agents["101"]["signed_in"] and agents["101"]["ready"]

    assert (
        sam_client.post(f"/supervisor/agents/{alice.pk}/not-ready/", {"reason": "Coaching"}).status_code
        == 200
    )
    assert not emulator.control("GET", "huawei/agents")["101"]["ready"]
    saybusy = emulator.requests(platform="huawei", path="/agentgateway/resource/onlineagent/101/saybusy")
    assert len(saybusy) == 1
    assert AuditEntry.objects.get().campaign == campaign

    assert sam_client.post(f"/supervisor/agents/{alice.pk}/sign-out/").status_code == 200
    session = PlatformSession.objects.get(agent=alice, account=account)
    assert session.status == PlatformSession.Status.SIGNED_OUT
    logout = emulator.requests(platform="huawei", path="/agentgateway/resource/onlineagent/101/logout")
    assert [r["method"] for r in logout] == ["DELETE"]
    assert emulator.control("GET", "huawei/agents")["101"] == {"signed_in": False}
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SIGN_OUT)
    assert entry.details["platform_sessions_left"] == []
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE
    assert any("signed you out." in f for f in desk_frames(pushed, alice))


def test_on_genesys_not_ready_and_sign_out_reach_the_platform(emulator, sam, sam_client, pushed):
    """GWS, over the emulator: Not ready is a NotReady on the voice channel with the reason, the
    sign-out an EndContactCenterSession, and the emulator sees the agent's session ended."""
    alice, account, campaign = ready_on(emulator, Platform.GENESYS, "DemoPreview")  # agent1
    user = emulator.control("GET", "genesys/state")["users"]["agent1"]
    assert user["contactCenterSession"] and user["agentState"] == "Ready"

    answer = sam_client.post(f"/supervisor/agents/{alice.pk}/not-ready/", {"reason": "Coaching"})
    assert answer.status_code == 200
    user = emulator.control("GET", "genesys/state")["users"]["agent1"]
    assert (user["agentState"], user["reason"]) == ("NotReady", "Coaching")
    voice = emulator.requests(platform="genesys", path="/api/v2/me/channels/voice")
    assert [r for r in voice if '"NotReady"' in (r.get("body") or "")]
    assert AuditEntry.objects.get().campaign == campaign
    alice.refresh_from_db()
    assert (alice.presence, alice.presence_reason) == (Presence.NOT_READY, "Coaching")

    assert sam_client.post(f"/supervisor/agents/{alice.pk}/sign-out/").status_code == 200
    session = PlatformSession.objects.get(agent=alice, account=account)
    assert session.status == PlatformSession.Status.SIGNED_OUT
    ends = [
        r
        for r in emulator.requests(platform="genesys", path="/api/v2/me")
        if "EndContactCenterSession" in (r.get("body") or "")
    ]
    assert [r["method"] for r in ends] == ["POST"]
    assert not emulator.control("GET", "genesys/state")["users"]["agent1"]["contactCenterSession"]
    entry = AuditEntry.objects.get(action=AuditEntry.Action.SIGN_OUT)
    assert entry.details["platform_sessions_left"] == []
    alice.refresh_from_db()
    assert alice.presence == Presence.OFFLINE
    assert any("signed you out." in f for f in desk_frames(pushed, alice))


# -- release -----------------------------------------------------------------------------------------


def test_release_is_recorded(agent, campaign, leads, sam, sam_client, pushed):
    hold(agent, leads[0], leads[1])
    assert sam_client.post(f"/supervisor/agents/{agent.pk}/reclaim/").status_code == 200
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.by, entry.agent, entry.details) == (
        AuditEntry.Action.RELEASE_LEADS,
        sam,
        agent,
        {"released": 2},
    )
    assert "2 leads back to the queue" in entry.summary
    assert any("A supervisor gave your lead back to the queue." in f for f in desk_frames(pushed, agent))


# -- campaigns ---------------------------------------------------------------------------------------


def test_pause_and_resume_are_confirmed_recorded_and_told_to_the_desks_working_it(
    agent, other, campaign, sam, sam_client, pushed
):
    be(agent, Presence.READY, campaign=campaign)
    be(other, Presence.READY, campaign=make_campaign(name="Elsewhere"))
    page = sam_client.get(reverse("supervisor:campaign", args=[campaign.pk])).content.decode()
    assert re.search(r'hx-post="[^"]*/status/"[^>]*hx-confirm="Pause ', page)
    url = reverse("supervisor:campaign_status", args=[campaign.pk])

    answer = sam_client.post(url, {"status": "paused"})

    # The confirmed button asked over htmx: the browser is sent back to the campaign.
    assert answer["HX-Redirect"] == reverse("supervisor:campaign", args=[campaign.pk])
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    assert any(f"A supervisor (Sam) paused {campaign.name}" in f for f in desk_frames(pushed, agent))
    assert not desk_frames(pushed, other)
    sam_client.post(url, {"status": "paused"})  # a stale page's second click: nothing happened
    sam_client.post(url, {"status": "active"})
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.ACTIVE
    assert any(f"A supervisor (Sam) resumed {campaign.name}." in f for f in desk_frames(pushed, agent))
    entries = list(AuditEntry.objects.values_list("action", "by", "campaign"))
    assert entries == [
        (AuditEntry.Action.CAMPAIGN_RESUME, sam.pk, campaign.pk),
        (AuditEntry.Action.CAMPAIGN_PAUSE, sam.pk, campaign.pk),
    ]


def test_rotating_the_intake_token_is_recorded_without_the_token(campaign, sam, sam_client):
    sam_client.post(reverse("supervisor:campaign_token_rotate", args=[campaign.pk]))
    token = Campaign.objects.get(pk=campaign.pk).intake_token
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.by, entry.campaign) == (AuditEntry.Action.TOKEN_ROTATE, sam, campaign)
    assert token not in f"{entry.summary} {entry.details}"


# -- the audit page ----------------------------------------------------------------------------------


def test_the_audit_page_lists_newest_first_filters_and_pages(agent, other, campaign, sam, sam_client):
    now = timezone.now()

    def entry(minutes_ago: int, action: str, **target) -> AuditEntry:
        return AuditEntry.objects.create(
            at=now - timedelta(minutes=minutes_ago),
            by=sam,
            by_name="Sam",
            action=action,
            summary="s",
            **target,
        )

    paused = entry(1, AuditEntry.Action.CAMPAIGN_PAUSE, campaign=campaign)
    not_ready = entry(2, AuditEntry.Action.NOT_READY, agent=agent)
    signed_out = entry(3, AuditEntry.Action.SIGN_OUT, agent=other)
    AuditEntry.objects.filter(pk=signed_out.pk).update(summary="<script>alert(1)</script>")

    page = Client()
    page.force_login(sam)
    html = page.get("/supervisor/audit/").content.decode()
    ids = re.findall(r'id="audit-(\d+)"', html)
    assert ids == [str(paused.pk), str(not_ready.pk), str(signed_out.pk)]
    assert (
        "Sam" in html and "Set Not ready" in html and "&lt;script&gt;" in html and "<script>alert" not in html
    )

    def listed(**params) -> list[str]:
        return re.findall(r'id="audit-(\d+)"', page.get("/supervisor/audit/", params).content.decode())

    assert listed(agent=agent.pk) == [str(not_ready.pk)]
    assert listed(campaign=campaign.pk) == [str(paused.pk)]
    assert listed(action=AuditEntry.Action.SIGN_OUT) == [str(signed_out.pk)]
    assert len(listed(agent="nobody")) == 3  # not a choice: everything, and said so

    for n in range(55):
        entry(10 + n, AuditEntry.Action.RELEASE_LEADS, agent=agent)
    first = page.get("/supervisor/audit/", {"agent": agent.pk}).content.decode()
    assert len(re.findall(r'id="audit-\d+"', first)) == 50
    assert f"agent={agent.pk}&amp;page=2" in first
    assert len(listed(agent=agent.pk, page=2)) == 6
    assert 'href="/supervisor/audit/"' in page.get("/supervisor/agents/").content.decode()  # the nav


# -- who may ------------------------------------------------------------------------------------------


def test_agents_and_anonymous_users_are_refused_everywhere_new(agent, other, campaign, leads, pushed):
    be(other, Presence.READY, campaign=campaign)
    hold(other, leads[0])
    posts = [f"/supervisor/agents/{other.pk}/{what}/" for what in ("not-ready", "sign-out", "reclaim")]
    anonymous, agent_client = Client(), login(agent)
    token = campaign.intake_token
    for url in posts:
        answer = anonymous.post(url, {"reason": "Break"})
        assert answer.status_code == 302 and "/login/" in answer["Location"], url
        assert agent_client.post(url, {"reason": "Break"}).status_code == 403, url
    assert "/login/" in anonymous.get("/supervisor/audit/")["Location"]
    assert agent_client.get("/supervisor/audit/").status_code == 403
    for url in (
        reverse("supervisor:campaign_status", args=[campaign.pk]),
        reverse("supervisor:campaign_token_rotate", args=[campaign.pk]),
    ):
        answer = anonymous.post(url, {"status": "paused"})
        assert answer.status_code == 302 and "/login/" in answer["Location"], url
        assert agent_client.post(url, {"status": "paused"}).status_code == 403, url
    other.refresh_from_db()
    assert other.presence == Presence.READY
    assert Lead.objects.get(pk=leads[0].pk).lease_owner == other
    assert Campaign.objects.values_list("status", "intake_token").get(pk=campaign.pk) == (
        Campaign.Status.ACTIVE,
        token,
    )
    # Nor can they resume a paused campaign.
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    resume = reverse("supervisor:campaign_status", args=[campaign.pk])
    assert "/login/" in anonymous.post(resume, {"status": "active"})["Location"]
    assert agent_client.post(resume, {"status": "active"}).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == Campaign.Status.PAUSED
    assert not AuditEntry.objects.exists()
    plain = Client()
    plain.force_login(agent.user)
    assert 'href="/supervisor/audit/"' not in plain.get("/desk/").content.decode()


def test_the_interventions_are_404_for_someone_not_on_the_board(sam_client, supervisor):
    for what in ("not-ready", "sign-out"):
        assert sam_client.post(f"/supervisor/agents/{supervisor.pk}/{what}/").status_code == 404
    assert sam_client.post("/supervisor/agents/999999/sign-out/").status_code == 404

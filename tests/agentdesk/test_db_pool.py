"""The web process borrows its PostgreSQL connections from a bounded pool: a burst of requests
waits for one of ``DB_POOL_MAX_SIZE`` connections instead of opening one each (issue 20: a burst of
Dial clicks opened 100 and met PostgreSQL's "too many clients")."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection
from django.test import Client

from tests.emulator_fixtures import free_port, wait_for_http
from tests.factories import make_campaign, make_leads, make_user_agent
from tests.process_fixtures import child_env, daphne

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def web(transactional_db):
    if connection.vendor != "postgresql":
        pytest.skip("the pool is PostgreSQL's (set DATABASE_URL=postgres://...)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = child_env(PUBLIC_BASE_URL=url, ALLOWED_HOSTS="127.0.0.1,localhost", DB_POOL_MAX_SIZE="3")
    process = daphne("web-pool", port, env).start()
    try:
        wait_for_http(f"{url}/login/", timeout=30)
        yield url, process
    finally:
        process.stop()


def connections_of(pid: int) -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", [f"agentdesk-web-{pid}"]
        )
        return cursor.fetchone()[0]


def test_a_burst_of_desk_requests_shares_a_few_connections_and_every_one_is_answered(web):
    url, process = web
    agent = make_user_agent("alice", 1)
    campaign = make_campaign(name="Pool")
    make_leads(campaign, 5)
    agent.desk_campaign = campaign
    agent.save(update_fields=["desk_campaign"])
    client = Client()
    client.force_login(agent.user)
    cookies = {"sessionid": client.cookies["sessionid"].value}

    seen, done = [], threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(connections_of(process.process.pid))
            time.sleep(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(max_workers=40) as burst:
            answers = list(
                burst.map(
                    lambda _: requests.get(
                        f"{url}/desk/state/", cookies=cookies, headers={"HX-Request": "true"}, timeout=60
                    ),
                    range(120),
                )
            )
    finally:
        done.set()
        watcher.join()
    assert [a.status_code for a in answers] == [200] * 120
    assert all('id="desk-' in a.text for a in answers)
    # Never more than the pool's three at once, and they stay open for the next request.
    assert 1 <= max(seen) <= 3, seen
    assert connections_of(process.process.pid) >= 1

"""A dry run and an import committed by a real ``celery -A agentdesk worker -Q imports`` process,
with the progress pushed to the supervisors' channel group."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client

from agentdesk import fragments, live
from campaigns import blockers, services
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import sheet_bytes, upload_sheet
from tests.factories import make_leads
from tests.process_fixtures import ManagedProcess, celery_worker, child_env, wait_for_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def imports_worker(transactional_db, settings) -> Iterator[ManagedProcess]:
    worker = celery_worker("imports", "campaigns-imports", child_env())
    worker.start()
    try:
        wait_for_worker("campaigns-imports-")
        yield worker
    finally:
        worker.stop()


async def _drain(layer, channel: str) -> list[dict]:
    frames = []
    while True:
        try:
            frames.append(await asyncio.wait_for(layer.receive(channel), timeout=2))
        except TimeoutError:
            return frames


def wait_for_status(upload: SheetUpload, status: str, timeout: float = 60) -> SheetUpload:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        upload.refresh_from_db()
        if upload.status == status:
            return upload
        if upload.status == SheetUpload.Status.FAILED:
            raise AssertionError(upload.error)
        time.sleep(0.1)
    raise AssertionError(f"upload stuck in {upload.status}")


def test_import_through_a_real_worker(imports_worker, campaign, settings):
    settings.MEDIA_ROOT = str(settings.VAR_DIR / "media")  # shared with the worker (same VAR_DIR)
    rows = [["Name", "Phone"]] + [[f"Lead {i}", f"+1212555{i:04d}"] for i in range(300)] + [["Bad", "12"]]
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(live.SUPERVISORS, channel)
    upload = upload_sheet(campaign, sheet_bytes(rows))
    services.upload_start_dry_run(upload=upload)
    upload = wait_for_status(upload, SheetUpload.Status.VALIDATED)
    assert (upload.valid_rows, upload.invalid_rows) == (300, 1)
    services.upload_start_import(upload=upload)
    upload = wait_for_status(upload, SheetUpload.Status.DONE)
    assert upload.imported_rows == 300
    assert Lead.objects.filter(campaign=campaign).count() == 300
    # The worker sent progress events to the supervisors; rendered at delivery, each is the
    # progress partial (stable id, out-of-band swap) with the state of that moment.
    frames = async_to_sync(_drain)(layer, channel)
    events = [f for f in frames if f["type"] == live.UPLOAD_PROGRESS and f["upload"] == upload.pk]
    assert len(events) >= 2  # the dry run and the import, at least
    html = fragments.supervisor_event(events[-1])
    assert f'id="upload-progress-{upload.pk}"' in html and "hx-swap-oob" in html
    assert "Imported" in html


def test_a_big_campaigns_breakdown_is_counted_by_the_worker(
    imports_worker, campaign, supervisor, monkeypatch
):
    """Above ``INLINE_MAX`` remaining leads the page does not count them itself: it says it is
    counting, a worker counts, and the page asks again until the count is there; the counts are
    the ones counted on the spot."""
    make_leads(campaign, 5)
    Lead.objects.filter(pk=Lead.objects.filter(campaign=campaign).first().pk).update(attempts=99)
    monkeypatch.setattr(blockers, "INLINE_MAX", 2)
    boss = Client()
    boss.force_login(supervisor.user)
    path = f"/supervisor/campaigns/{campaign.pk}/breakdown/"
    first = boss.get(path).content.decode()
    assert "Counting the remaining leads" in first and 'hx-trigger="load delay:3s"' in first
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        fragment = boss.get(path).content.decode()
        if 'id="breakdown-remaining"' in fragment:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the worker never counted")
    assert 'id="breakdown-remaining">5<' in fragment and "Attempts used up" in fragment
    assert "Counted at" in fragment
    # A fresh count is shown as it is: no asking again.
    assert 'hx-trigger="load delay:3s"' not in boss.get(path).content.decode()
    # Count again: the last count stays on screen while the worker counts anew.
    again = boss.get(path + "?again=1").content.decode()
    assert 'id="breakdown-remaining">5<' in again and "counting again" in again


def test_a_count_kept_for_an_earlier_campaign_with_the_same_id_is_never_shown(
    campaign, supervisor, monkeypatch
):
    """Redis outlives a re-created database: a campaign made later under the same id starts with
    no count of its own, never the old campaign's."""
    make_leads(campaign, 5)
    monkeypatch.setattr(blockers, "INLINE_MAX", 2)
    monkeypatch.setattr(services.tasks.campaign_breakdown, "delay", lambda *args: None)
    services.campaign_breakdown_count_run(campaign_id=campaign.pk)
    boss = Client()
    boss.force_login(supervisor.user)
    path = f"/supervisor/campaigns/{campaign.pk}/breakdown/"
    assert 'id="breakdown-remaining">5<' in boss.get(path).content.decode()
    pk, account = campaign.pk, campaign.account
    campaign.delete()
    again = type(campaign).objects.create(pk=pk, name="Made again", account=account)
    make_leads(again, 3)
    page = boss.get(path).content.decode()
    assert "Counting the remaining leads" in page and "breakdown-remaining" not in page

"""Named users (an agent, a supervisor), a campaign, and helpers that write sheets in the
encodings and delimiters supervisors bring."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, connections, transaction
from django.http import HttpRequest
from django.test import Client
from django.urls import reverse

from campaigns import importer, services
from campaigns.models import SheetUpload
from tests.factories import PASSWORD, make_campaign, make_user_agent


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.fixture(autouse=True)
def _no_broker(request, monkeypatch):
    """Tests that run task bodies in-process must not also hand the same task to a real worker
    (a session-wide ``live_stack`` worker may be listening on the imports queue). Tests with
    real workers keep the broker."""
    if {"live_stack", "imports_worker"} & set(request.fixturenames):
        return
    from campaigns import tasks

    for task in (tasks.upload_dry_run, tasks.upload_import, tasks.upload_undo, tasks.campaign_sync):
        monkeypatch.setattr(task, "delay", lambda *args, **kwargs: None)


@pytest.fixture
def agent(db):
    return make_user_agent("agent", 1)


@pytest.fixture
def supervisor(db):
    return make_user_agent("boss", 9, supervisor=True)


@pytest.fixture
def campaign(db):
    return make_campaign(name="Import test")


@pytest.fixture
def supervisor_client(supervisor) -> Client:
    client = Client()
    assert client.login(request=HttpRequest(), username=supervisor.user.username, password=PASSWORD)
    return client


@pytest.fixture
def agent_client(agent) -> Client:
    client = Client()
    assert client.login(request=HttpRequest(), username=agent.user.username, password=PASSWORD)
    return client


def sheet_bytes(
    rows: Sequence[Sequence[str]], *, encoding: str = "utf-8", delimiter: str = ",", crlf: bool = True
) -> bytes:
    text = io.StringIO()
    csv.writer(text, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n").writerows(rows)
    return text.getvalue().encode(encoding)


def import_form(client, upload: SheetUpload) -> dict[str, str]:
    """The Import form as the upload page shows it: the number of the dry run its report is of."""
    page = client.get(reverse("supervisor:upload", args=[upload.campaign_id, upload.pk])).content.decode()
    form = page[page.index('id="import-button"') - 600 : page.index('id="import-button"')]
    return dict(re.findall(r'<input type="hidden" name="(run)" value="([^"]*)">', form))


def upload_sheet(campaign, data: bytes, name: str = "leads.csv", user=None) -> SheetUpload:
    return services.upload_create(campaign=campaign, file=SimpleUploadedFile(name, data), user=user)


def run_dry(upload: SheetUpload) -> SheetUpload:
    services.upload_start_dry_run(upload=upload)
    return services.upload_dry_run_run(upload_id=upload.pk) or SheetUpload.objects.get(pk=upload.pk)


def run_import(upload: SheetUpload) -> SheetUpload:
    upload = run_dry(upload)
    services.upload_start_import(upload=upload)
    return services.upload_import_run(upload_id=upload.pk) or SheetUpload.objects.get(pk=upload.pk)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        for line in lines:
            handle.write(line)
    return path


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://...")


@pytest.fixture
def split_small(monkeypatch):
    """Small sheets take the big sheets' paths: two dry-run processes, the big insert (COPY, or
    the campaign's own partition when it has no lead yet)."""
    monkeypatch.setattr(importer, "SPLIT_MIN_BYTES", 0)
    monkeypatch.setattr(importer, "COPY_MIN_BYTES", 0)
    monkeypatch.setenv("AGENTDESK_IMPORT_SPLIT", "1")


@contextmanager
def held_elsewhere(work: Callable[[], object]) -> Iterator[None]:
    """For the block, keep a transaction open on another thread's connection, after it ran
    ``work`` (a lock or a read it keeps until then)."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                work()
                ready.set()
                release.wait(20)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert ready.wait(10)
        yield
    finally:
        release.set()
        holder.join(20)

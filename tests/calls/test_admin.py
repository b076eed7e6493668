"""The account admin never shows credentials; calls are read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from calls.models import TelephonyAccount

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", password="root-pass-word")
    client.force_login(user)
    return client


def test_credentials_are_write_only(admin_client):
    account = TelephonyAccount(name="R", platform="ryng", base_url="http://x.test/rest-api/v1")
    account.credentials = {"token": "very-secret-token"}
    account.save()
    page = admin_client.get(f"/admin/calls/telephonyaccount/{account.pk}/change/")
    assert page.status_code == 200
    assert b"very-secret-token" not in page.content
    assert account.credentials_encrypted.encode() not in page.content
    data = {
        "name": "R",
        "platform": "ryng",
        "base_url": "http://x.test/rest-api/v1",
        "options": "{}",
        "is_active": "on",
        "new_credentials": "",
    }
    assert admin_client.post(f"/admin/calls/telephonyaccount/{account.pk}/change/", data).status_code == 302
    account.refresh_from_db()
    assert account.credentials == {"token": "very-secret-token"}  # empty keeps the stored value
    data["new_credentials"] = '{"token": "rotated"}'
    admin_client.post(f"/admin/calls/telephonyaccount/{account.pk}/change/", data)
    account.refresh_from_db()
    assert account.credentials == {"token": "rotated"}


def test_calls_are_read_only(admin_client):
    assert admin_client.get("/admin/calls/call/add/").status_code == 403
    assert admin_client.get("/admin/calls/call/").status_code == 200
    assert admin_client.get("/admin/calls/callevent/").status_code == 200

"""Generated hostile input (hypothesis) against everything that reads what a person or a CRM
sends: the sheet upload and its dry run, the intake API, the campaign and disposition forms.
Each answers in words (a refusal, a 4xx with a message, a form error) and never loses a valid
row; none raises."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import services
from campaigns.forms import CampaignForm
from campaigns.models import Lead, SheetUpload
from tests.campaigns.conftest import run_dry, sheet_bytes, upload_sheet
from tests.campaigns.test_api_export_dnc import post_intake

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Cells a hostile or careless sheet holds: formulas, quotes, delimiters, control characters,
# right-to-left marks, emoji, very long text.
cells = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        ['=HYPERLINK("http://x","y")', '"', '""', ";", "\t", "\r\n", "\x00", "\u202e", "💥", "+1 (212)"]
    ),
    st.text(alphabet="0123456789 +-()", max_size=20),
)
numbers = st.integers(min_value=2012000000, max_value=2019999999).map(lambda n: f"+1{n}")


@FUZZ
@given(data=st.binary(max_size=4096))
def test_any_bytes_uploaded_are_refused_in_words_or_stored(campaign, data):
    try:
        upload = upload_sheet(campaign, data)
    except services.ServiceError as exc:
        assert str(exc).strip(), "a refusal says why"
        return
    try:
        upload = run_dry(upload)
    except (services.ServiceError, ValueError) as exc:  # the mapping page asks for a phone column
        assert str(exc).strip()
        return
    assert upload.status in (SheetUpload.Status.VALIDATED, SheetUpload.Status.FAILED), upload.status
    if upload.status == SheetUpload.Status.FAILED:
        assert upload.error


@FUZZ
@given(
    good=st.lists(numbers, min_size=1, max_size=8, unique=True),
    junk=st.lists(st.lists(cells, min_size=0, max_size=5), max_size=8),
)
def test_junk_rows_never_cost_a_valid_row(campaign, good, junk):
    Lead.objects.filter(campaign=campaign).delete()
    rows = [["phone", "name"], *[[number, "Valid"] for number in good], *junk]
    try:
        upload = upload_sheet(campaign, sheet_bytes(rows))
    except services.ServiceError as exc:  # a junk row wider than the limits, say
        assert str(exc).strip()
        return
    upload = run_dry(upload)
    if upload.status != SheetUpload.Status.VALIDATED:
        assert upload.error
        return
    services.upload_start_import(upload=upload)
    services.upload_import_run(upload_id=upload.pk)
    stored = set(Lead.objects.filter(campaign=campaign).values_list("number", flat=True))
    assert set(good) <= stored, "every valid row was imported"


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(body=st.one_of(json_values.map(json.dumps), st.text(max_size=200), st.just("[" * 3000)))
def test_the_intake_api_answers_any_body_with_json(client, campaign, body):
    answer = post_intake(client, campaign, body)
    assert answer.status_code in (200, 201, 400, 413), (answer.status_code, body[:80])
    reply = answer.json()
    if answer.status_code >= 400:
        assert reply.get("message"), reply


@FUZZ
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "name": cells,
            "platform_campaign_id": cells,
            "agent_mapping": st.text(max_size=12),
            "push_format": st.text(max_size=12),
            "default_region": st.text(max_size=4),
            "window_start": st.text(max_size=8),
            "window_end": st.text(max_size=8),
            "attempt_cap": st.text(max_size=8),
            "retry_delay_minutes": st.text(max_size=8),
            "disp-TOTAL_FORMS": st.text(max_size=6),
            "disp-INITIAL_FORMS": st.text(max_size=6),
            "disp-0-id": st.text(max_size=6),
            "disp-0-name": st.text(max_size=90),
            "disp-0-outcome": st.text(max_size=10),
            "disp-0-retry_delay_minutes": st.text(max_size=8),
            "disp-0-key": st.text(max_size=3),
            "disp-0-ORDER": st.text(max_size=6),
            "disp-1-name": st.text(max_size=20),
            "disp-1-key": st.text(max_size=3),
            "custom_fields_text": st.text(max_size=100),
            "account": st.text(max_size=5),
        },
    )
)
def test_the_campaign_form_takes_anything_and_answers_with_errors(campaign, fields):
    form = CampaignForm(data=fields)
    if not form.is_valid():
        assert form.errors

"""campaigns.phone: the fast path gives exactly phonenumbers' answers, only faster."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from phonenumbers import timezone as pn_timezone

from campaigns import phone

REGIONS = ["US", "GB", "DE", "FR", "IN", "IT", "AU", "BR", "CA", "MX", "JP", "NL", "ES", "AR"]


def _reference(raw: str, region: str):
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number) or number.extension:
        return None
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != "Etc/Unknown")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), zones


def _samples(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    samples = []
    for _ in range(count):
        region = rng.choice(REGIONS)
        kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
        example = phonenumbers.example_number_for_type(region, kind)
        digits = "".join(
            c if rng.random() > 0.3 else str(rng.randint(0, 9)) for c in str(example.national_number)
        )
        if example.italian_leading_zero:
            digits = "0" + digits
        style = rng.randint(0, 3)
        if style == 0:
            raw = f"+{example.country_code}{digits}"
        elif style == 1:
            raw = f"+{example.country_code} {digits[:3]} {digits[3:]}"
        elif style == 2:
            raw = digits
        else:
            raw = (
                f"0{digits}" if region not in ("US", "CA") else f"1 ({digits[:3]}) {digits[3:6]}-{digits[6:]}"
            )
        samples.append((raw, region))
    return samples


def test_fast_path_agrees_with_phonenumbers_on_random_numbers():
    phone._cache.clear()
    mismatches = []
    fast = 0
    for raw, region in _samples(6000, seed=11):
        got = phone.normalize(raw, region)
        expected = _reference(raw, region)
        if phone._fast(raw.translate(phone._FORMATTING), region) is not None:
            fast += 1
        if expected is None:
            if isinstance(got, phone.Normalized):
                mismatches.append((raw, region, got, None))
        elif not isinstance(got, phone.Normalized) or (got.e164, got.zones) != expected:
            mismatches.append((raw, region, got, expected))
    assert not mismatches, mismatches[:5]
    assert fast > 3000  # most plain numbers never reach phonenumbers.parse


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-0132", "US", None),  # 555-01xx is fictional but valid-shaped: decided by metadata
        ("+14155552671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("1 415 555 2671", "US", "+14155552671"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("+44 (0) 20 7946 0018", "GB", "+442079460018"),
        ("00442079460018", "GB", "+442079460018"),
        ("011 44 20 7946 0018", "US", "+442079460018"),
        ("98765 43210", "IN", "+919876543210"),
    ],
)
def test_normalises_common_spellings(raw, region, e164):
    expected = _reference(raw, region)
    got = phone.normalize(raw, region)
    if e164 is None:
        assert isinstance(got, phone.Normalized) == (expected is not None)
    else:
        assert isinstance(got, phone.Normalized), got
        assert got.e164 == e164


@pytest.mark.parametrize("raw", ["", "   ", "12", "not a number", "+999 1234", "+1 415 555 2671 ext. 12"])
def test_rejects_with_a_reason(raw):
    got = phone.normalize(raw, "US")
    assert isinstance(got, phone.PhoneError)
    assert got.reason


def test_time_zone_of_a_straddling_area_code_is_the_westernmost():
    # Some 208 (Idaho) exchanges span Mountain and Pacific time.
    got = phone.normalize("+12083201234", "US")
    assert isinstance(got, phone.Normalized)
    assert set(got.zones) == {"America/Boise", "America/Los_Angeles"}
    assert got.timezone == "America/Los_Angeles"

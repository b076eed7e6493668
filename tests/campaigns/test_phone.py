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
    phone.clear_cache()
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


BROAD_REGIONS = [
    *REGIONS,
    "JM",
    "AG",
    "PR",
    "KZ",
    "RU",
    "CN",
    "SG",
    "NZ",
    "ZA",
    "IE",
    "CH",
    "KR",
    "NG",
    "EG",
    "IL",
]


def _broad_samples(count: int, seed: int) -> list[tuple[str, str]]:
    """Numbers as sheets spell them: national and E.164, formatted or not, with the national or
    international prefix or the calling code in front, from the region or a neighbour, and
    mangled into invalid ones (wrong digits, too short, too long, random)."""
    rng = random.Random(seed)
    kinds = [
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
    ]

    def spaced(digits: str) -> str:
        style = rng.randint(0, 5)
        if style == 0 or len(digits) < 7:
            return digits
        if style == 1:
            return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
        if style == 2:
            return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
        if style == 3:
            return f"{digits[:2]}.{digits[2:5]}.{digits[5:]}"
        if style == 4:
            return f" {digits[:4]}\u00a0{digits[4:]} "
        return f"{digits[:3]}/{digits[3:]}"

    samples = []
    for _ in range(count):
        region = rng.choice(BROAD_REGIONS)
        source = region if rng.random() < 0.8 else rng.choice(BROAD_REGIONS)
        example = phonenumbers.example_number_for_type(source, rng.choice(kinds)) or (
            phonenumbers.example_number_for_type(source, phonenumbers.PhoneNumberType.FIXED_LINE)
        )
        digits = "".join(
            c if rng.random() > 0.35 else str(rng.randint(0, 9)) for c in str(example.national_number)
        )
        if rng.random() < 0.1:
            digits = digits[:-1] if rng.random() < 0.5 else digits + str(rng.randint(0, 9))
        if example.italian_leading_zero:
            digits = "0" + digits
        code = str(example.country_code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        shape = rng.randint(0, 8)
        if shape <= 1:
            raw = f"+{code}{digits}"
        elif shape == 2:
            raw = f"+{code} {spaced(digits)}"
        elif shape <= 4:
            raw = spaced(digits)
        elif shape == 5:
            raw = spaced((metadata.national_prefix or "0") + digits)
        elif shape == 6:
            raw = spaced(("011" if metadata.country_code == 1 else "00") + code + digits)
        elif shape == 7:
            raw = spaced(code + digits)
        else:
            raw = ("+" if rng.random() < 0.5 else "") + "".join(
                str(rng.randint(0, 9)) for _ in range(rng.randint(1, 16))
            )
        samples.append((raw, region))
    return samples


def test_normalize_agrees_with_phonenumbers_on_a_broad_sample():
    """Every shape the bound-once lanes (_Lane, _CodeLane) take a short cut for, against
    phonenumbers itself: validity, E.164, every zone, and the stored zone rule."""
    phone.clear_cache()
    mismatches = []
    fast = 0
    for raw, region in _broad_samples(8000, seed=23):
        got = phone.normalize(raw, region)
        assert phone.normalizer(region)(raw) == got  # the bound form, and a second call, agree
        expected = _reference(raw, region)
        compact = raw.strip().translate(phone._FORMATTING)
        if compact and phone._fast(compact, region) is not None:
            fast += 1
        if expected is None:
            if not isinstance(got, phone.PhoneError):
                mismatches.append((raw, region, got, None))
        elif not isinstance(got, phone.Normalized) or (got.e164, got.zones) != expected:
            mismatches.append((raw, region, got, expected))
        elif got.timezone != phone.strictest_zone(got.zones):
            mismatches.append((raw, region, got, "stored zone"))
    assert not mismatches, mismatches[:5]
    assert fast > 5000


def test_zone_walk_is_the_longest_prefix_lookup():
    """_zone_walker finds the same zones as _zone_choice's longest-first look-up, for every
    calling code, at number lengths around the table's key lengths."""
    rng = random.Random(5)
    for code in sorted(phone._CALLING_CODES):
        walk = phone._zone_walker(code)
        for _ in range(40):
            digits = code + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(0, 12)))
            assert walk("+" + digits) == phone._zone_choice(code, digits), digits


def test_cells_with_the_same_digits_get_their_own_answers():
    """The cache keys by the text phonenumbers parses: "/ x12" starts a second number (ignored),
    " x12" an extension (refused)."""
    phone.clear_cache()
    for first, second in [("415 555 2671 x12", "4155552671/ x12"), ("4155552671/ x12", "415 555 2671 x12")]:
        assert phone.normalize(first, "US") == phone._slow(first, "US")
        assert phone.normalize(second, "US") == phone._slow(second, "US")
        assert phone.normalize(first, "US") != phone.normalize(second, "US")


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


@pytest.mark.parametrize(
    "raw", ["", "   ", "12", "not a number", "+999 1234", "+1 415 555 2671 ext. 12", "-", "( )", " . "]
)
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

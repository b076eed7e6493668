"""Phone numbers: E.164 normalisation, validation and time zones, fast enough for million-row sheets.

:func:`normalize` is the one entry point. ``phonenumbers.parse`` + ``is_valid_number`` +
``time_zones_for_number`` together manage about 15,000 numbers a second on one core, which alone
would take over a minute for a 1,000,000-row sheet. Two things make it an order of magnitude faster
without changing a single answer:

1. **A fast path for plain digit strings** (``+14155550100``, ``(415) 555-0100``, ``020 7946 0018``
   after the formatting characters are dropped). It replays libphonenumber's own decision steps
   (country code split, region choice from ``leading_digits`` or number type, the number-type
   ladder of ``_number_type_helper``) on precompiled regular expressions from phonenumbers'
   metadata. It only answers when libphonenumber provably would not rewrite the digits (no national
   prefix or international prefix at the start, no extension, no letters); otherwise it hands the
   number to ``phonenumbers.parse``. ``tests/campaigns/test_phone.py`` checks the two paths agree
   on random samples from several countries.
2. **A bounded cache** of the slow path's answers per (region, text), because CRM exports
   repeat numbers. The fast path's answers are not cached: on a sheet of distinct numbers the
   look-up and insert were a tenth of a fast answer's cost and never paid off.
3. **Everything bound once per region and per calling code** (:class:`_Lane`, :class:`_CodeLane`):
   at a few microseconds a number, dictionary look-ups, ``lru_cache`` calls and attribute reads
   were half of the cost. Hot loops take :func:`normalizer` once instead of calling
   :func:`normalize` per row.

Time zones: ``phonenumbers.timezone`` maps a number prefix to one or more IANA zones (an area code
can straddle zones). See :func:`zones_for` and ``docs/campaigns.md`` "Calling windows" for how the
strictest window is chosen.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneNumberType
from phonenumbers.phonenumberutil import _GEO_MOBILE_COUNTRIES, COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata
from phonenumbers.timezone import TIMEZONE_DATA, TIMEZONE_LONGEST_PREFIX, UNKNOWN_TIMEZONE

# Characters people type between digits; anything else sends the number to the slow path.
_FORMATTING = str.maketrans("", "", " -.()/\t\u00a0")
# The same deletions for ASCII text as bytes: ``str.translate`` looks every character up in a dict
# (1.6 µs for "(212) 555-0134"); ``bytes.translate`` with a delete set is one C loop (0.2 µs with
# the encode and decode). ASCII text can only hold the table's ASCII characters.
_FORMATTING_ASCII = bytes(c for c in _FORMATTING if c < 128)
# Bounded: ~300 bytes an entry, per region and process (a staged dry run has two). Only numbers
# that need phonenumbers.parse (~60 µs) go in; repeats in CRM exports tend to be close together,
# which a small cache still catches. Keyed by the text parse() saw, not by its digits: "415 555 2671
# /x12" (a second number after "/") and "415 555 2671 x12" (an extension) have the same digits but
# not the same answer.
_CACHE_LIMIT = 10_000


class Normalized(NamedTuple):
    """A valid number: E.164 text, the zone stored on the lead, and every zone it may be in.
    (A named tuple: a frozen dataclass cost 2 µs a number to build, a sixth of a million-row
    sheet's phone checks.)"""

    e164: str
    timezone: str
    zones: tuple[str, ...]


class PhoneError(NamedTuple):
    """Why a value is not a callable number, in words a supervisor can act on."""

    reason: str


# -- time zones ------------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _prefix_lengths(cc: str) -> tuple[int, ...]:
    """Key lengths that exist in the zone table for one country code, longest first, so a lookup
    tries five lengths for +1 instead of nine."""
    lengths = {len(k) for k in TIMEZONE_DATA if k.startswith(cc) or cc.startswith(k)}
    return tuple(sorted((n for n in lengths if n <= TIMEZONE_LONGEST_PREFIX), reverse=True))


def _zone_choice(code: str, digits: str) -> tuple[tuple[str, ...], str]:
    """The zones of the longest prefix of ``digits`` in the zone table (``code``: the calling
    code) and the one of them stored on the lead (:func:`strictest_zone`)."""
    get = TIMEZONE_DATA.get
    for length in _prefix_lengths(code):
        zones = get(digits[:length])
        if zones:
            break
    else:
        return _NO_ZONES
    return _choice(zones)


_NO_ZONES: tuple[tuple[str, ...], str] = ((), "")


def _choice(zones: tuple[str, ...]) -> tuple[tuple[str, ...], str]:
    """A zone table entry as (known zones, stored zone), one shared tuple per distinct entry."""
    choice = _zone_choices.get(zones)
    if choice is None:
        known = _known(zones)
        choice = _zone_choices[zones] = (known, strictest_zone(known))
    return choice


# The table's zone tuples (a few hundred distinct ones) -> (known zones, stored zone).
_zone_choices: dict[tuple[str, ...], tuple[tuple[str, ...], str]] = {}


def _zone_walker(code: str) -> Callable[[str], tuple[tuple[str, ...], str]]:
    """``_zone_choice(code, e164[1:])`` for one calling code, taking the E.164 text itself.

    Same answer (the longest table key that starts the digits), found from the short end: a walk
    over the key lengths that stops at the first prefix no longer key extends. Every number of
    the code starts with the code, so the steps up to its length are walked here, once. A US
    number then takes one look-up (its area code) instead of four, and no slice of "+" off it."""
    lengths = _prefix_lengths(code)
    keys = {
        k: zones
        for k, zones in TIMEZONE_DATA.items()
        if len(k) in lengths and (k.startswith(code) or code.startswith(k)) and zones
    }
    ascending = sorted({len(k) for k in keys})
    extended = {k[:n] for k in keys for n in ascending if n < len(k)}
    # prefix -> (its choice if it is a key, whether a longer key starts with it)
    nodes = {p: (_choice(keys[p]) if p in keys else None, p in extended) for p in keys.keys() | extended}
    get = nodes.get

    def walker(start: tuple[tuple[str, ...], str], ends: tuple[int, ...]):
        def walk(e164: str) -> tuple[tuple[str, ...], str]:
            found = start
            for end in ends:  # slice ends in the E.164 text, after its "+"
                node = get(e164[1:end])
                if node is None:
                    break  # neither a key nor the start of one: no longer key matches either
                choice, longer = node
                if choice is not None:
                    found = choice
                if not longer:
                    break
            return found

        return walk

    # Every number of the code starts with the code: that part of the walk is done here, once.
    # (Had it stopped early, the rest finds no node and stops at its first look-up.)
    head = walker(_NO_ZONES, tuple(n + 1 for n in ascending if n <= len(code)))("+" + code)
    return walker(head, tuple(n + 1 for n in ascending if n > len(code)))


@lru_cache(maxsize=4096)
def _known(zones: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(z for z in zones if z != UNKNOWN_TIMEZONE)


def _zones(cc: int, nsn: str, geographic: bool) -> tuple[str, ...]:
    """``phonenumbers.timezone.time_zones_for_number`` without the parse: geographic numbers by
    their longest known prefix, others by country calling code."""
    code = str(cc)
    return _zone_choice(code, code + nsn if geographic else code)[0]


@lru_cache(maxsize=4096)
def strictest_zone(zones: tuple[str, ...]) -> str:
    """The one zone stored on a lead when its number may be in several.

    Calls are only allowed when the lead is inside the window in *every* candidate zone (see
    :func:`campaigns.selectors.calling_window_status`), so the stored zone is a display choice:
    the westernmost candidate (smallest UTC offset on 1 January, then name), whose clock is the
    earliest, so an agent is never told "it is 9:05 there" when it may be 8:05 for the customer.
    """
    if not zones:
        return ""
    if len(zones) == 1:
        return zones[0]
    return min(zones, key=lambda z: (_january_offset(z), z))


@lru_cache(maxsize=1024)
def _january_offset(zone: str) -> float:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        offset = datetime(2025, 1, 1, 12, tzinfo=ZoneInfo(zone)).utcoffset()
    except Exception:
        return 0.0
    return offset.total_seconds() if offset else 0.0


# -- the fast path: libphonenumber's decision steps on precompiled metadata -----------------------

_UNBUILT = object()
_UNKNOWN = PhoneNumberType.UNKNOWN
_FIXED_LINE = PhoneNumberType.FIXED_LINE
_FIXED_LINE_OR_MOBILE = PhoneNumberType.FIXED_LINE_OR_MOBILE

_TYPE_LADDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)


def _desc(desc) -> tuple[frozenset[int], re.Pattern[str]] | None:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length or ()), re.compile(f"(?:{desc.national_number_pattern})")


class _RegionTyper:
    """``phonenumberutil._number_type_helper`` for one region, patterns compiled once."""

    def __init__(self, region: str):
        md = PhoneMetadata.metadata_for_region(region)
        self.region = region
        self.country_code: int = md.country_code
        self.calling_code = str(md.country_code)
        self.leading_digits = re.compile(md.leading_digits) if md.leading_digits else None
        self.general = _desc(md.general_desc)
        self.ladder = [(d, t) for name, t in _TYPE_LADDER if (d := _desc(getattr(md, name))) is not None]
        self.fixed = _desc(md.fixed_line)
        self.mobile = _desc(md.mobile)
        self.same_mobile_fixed = bool(md.same_mobile_and_fixed_line_pattern)
        self._by_length: dict[int, tuple[Callable[[str], re.Match[str] | None], tuple[int, ...]] | None] = {}
        # A national number starting with one of these would be rewritten by phonenumbers.parse.
        self.national_prefix = (
            re.compile(md.national_prefix_for_parsing) if md.national_prefix_for_parsing else None
        )
        if not self.national_prefix and md.national_prefix:
            self.national_prefix = re.compile(re.escape(md.national_prefix))
        self.intl_prefix = re.compile(md.international_prefix) if md.international_prefix else None
        prefixes = [p.pattern for p in (self.national_prefix, self.intl_prefix) if p is not None]
        self._rewrite = re.compile("|".join(f"(?:{p})" for p in prefixes)) if prefixes else None

    @staticmethod
    def _matches(nsn: str, desc: tuple[frozenset[int], re.Pattern[str]] | None) -> bool:
        if desc is None:
            return False
        lengths, pattern = desc
        if lengths and len(nsn) not in lengths:
            return False
        return pattern.fullmatch(nsn) is not None

    def number_type(self, nsn: str) -> int:
        """Exactly ``_number_type_helper``: the general pattern, then the ladder in its order."""
        matcher = self._by_length.get(len(nsn), _UNBUILT)
        if matcher is _UNBUILT:
            matcher = self._combined(len(nsn))
        if matcher is None:
            return _UNKNOWN
        fullmatch, kinds = matcher
        match = fullmatch(nsn)
        if match is None:
            return _UNKNOWN
        index = match.lastindex
        kind = kinds[index - 1] if index else _UNKNOWN
        # (A region whose mobile and fixed patterns are the same has FIXED_LINE_OR_MOBILE in
        # ``kinds`` already: see _combined.)
        if kind == _FIXED_LINE and self._matches(nsn, self.mobile):
            return _FIXED_LINE_OR_MOBILE
        return kind

    def _combined(self, length: int) -> tuple[Callable[[str], re.Match[str] | None], tuple[int, ...]] | None:
        """One alternation per number length over every type whose lengths allow it, in ladder
        order: a full match takes the first alternative that matches whole, as the ladder does.
        Each alternative is wrapped in a capture group so ``lastindex`` names the type. The
        general pattern, which every valid number must match first, leads as a lookahead: one
        regex call per number instead of two. Where mobile and fixed-line patterns are the same,
        a fixed-line match is always "fixed line or mobile", so the kinds say so directly."""
        if length in self._by_length:
            return self._by_length[length]
        if self.general is None or (self.general[0] and length not in self.general[0]):
            self._by_length[length] = None
            return None
        parts: list[str] = []
        kinds: list[int] = []
        candidates = [*self.ladder, (self.fixed, PhoneNumberType.FIXED_LINE)]
        if not self.same_mobile_fixed:
            candidates.append((self.mobile, PhoneNumberType.MOBILE))
        for desc, kind in candidates:
            if desc is None or (desc[0] and length not in desc[0]):
                continue
            # Inner groups in the metadata are non-capturing (libphonenumber's own rule), so our
            # group numbers are the alternatives' positions.
            parts.append(f"({desc[1].pattern})")
            kinds.append(kind)
        if self.same_mobile_fixed:
            kinds = [_FIXED_LINE_OR_MOBILE if k == _FIXED_LINE else k for k in kinds]
        general = f"(?=(?:{self.general[1].pattern})\\Z)"
        result = (
            (re.compile(general + "(?:" + "|".join(parts) + ")").fullmatch, tuple(kinds)) if parts else None
        )
        self._by_length[length] = result
        return result

    def would_rewrite(self, nsn: str) -> bool:
        """True when parse() might strip a national/international prefix from these digits."""
        return self._rewrite is not None and self._rewrite.match(nsn) is not None


@lru_cache(maxsize=512)
def _typer(region: str) -> _RegionTyper | None:
    if PhoneMetadata.metadata_for_region(region) is None:
        return None
    return _RegionTyper(region)


@lru_cache(maxsize=512)
def _typers_for_cc(cc: int) -> tuple[_RegionTyper, ...]:
    return tuple(t for r in COUNTRY_CODE_TO_REGION_CODE.get(cc, ()) if (t := _typer(r)) is not None)


def _type_finder(cc: int) -> Callable[[str], int] | None:
    """``is_valid_number`` + ``number_type`` for a national number of calling code ``cc``;
    ``None`` when phonenumbers must decide (non-geographic entities: +800, +882 ...)."""
    typers = _typers_for_cc(cc)
    if not typers:
        return None
    steps = tuple((t.leading_digits.match if t.leading_digits else None, t.number_type) for t in typers)

    def type_of(nsn: str) -> int:
        # Replays _region_code_for_number_from_list: first region whose leading digits match, or
        # else the first whose number type is known; then the type in that region decides validity.
        for leading, number_type in steps:
            if leading is not None:
                if leading(nsn):
                    return number_type(nsn)
                continue
            kind = number_type(nsn)
            if kind != _UNKNOWN:
                return kind
        return _UNKNOWN

    return type_of


def _invalid(cc: int, nsn: str) -> PhoneError:
    """The slow path's reason for a number the fast path has proven invalid."""
    main = _typers_for_cc(cc)[0]
    lengths = main.general[0] if main.general else frozenset()
    if lengths and len(nsn) not in lengths:
        return PhoneError("wrong number of digits")
    return PhoneError("not a valid number")


@lru_cache(maxsize=512)
def _geographic_kinds(cc: int) -> frozenset[int]:
    """The number types whose zones come from the number's prefix rather than its country."""
    fixed = {PhoneNumberType.FIXED_LINE, PhoneNumberType.FIXED_LINE_OR_MOBILE}
    return frozenset(fixed | {PhoneNumberType.MOBILE} if cc in _GEO_MOBILE_COUNTRIES else fixed)


def _geographic(kind: int, cc: int) -> bool:
    return kind in _geographic_kinds(cc)


_tuple_new = tuple.__new__  # what Normalized(...) runs, without its Python-level __new__ frame

# The calling codes as typed after "+" ("1", "44", "880"): prefix-free, so at most one of a
# number's first one, two or three digits is among them. ("+01..." matches none: the library's
# "unknown country code".)
_CALLING_CODES = {str(cc): cc for cc in COUNTRY_CODE_TO_REGION_CODE}


class _CodeLane:
    """What the fast path knows about one calling code, looked up once instead of per number."""

    __slots__ = ("cc", "code", "e164", "geographic", "nongeo", "plus", "type_of", "walk")

    def __init__(self, cc: int):
        code = str(cc)
        self.cc, self.code, self.plus = cc, code, "+" + code
        self.type_of = _type_finder(cc)
        self.geographic = _geographic_kinds(cc)
        self.walk = _zone_walker(code)
        self.nongeo = _zone_choice(code, code)
        self.e164 = self._e164()

    def _e164(self) -> Callable[[str], Normalized | PhoneError | None]:
        """The fast path for "+", this code and digits (checked by the caller)."""
        # Only answered when the code's main region has metadata, and not when the number after
        # the code starts with that region's national prefix (parse() strips it).
        main = _typer(COUNTRY_CODE_TO_REGION_CODE[self.cc][0])
        if main is None or self.type_of is None:
            return lambda e164: None
        prefix = main.national_prefix.match if main.national_prefix else None
        cc, start, type_of = self.cc, 1 + len(self.code), self.type_of
        geographic, walk, nongeo = self.geographic, self.walk, self.nongeo

        def e164_fast(e164: str) -> Normalized | PhoneError | None:
            nsn = e164[start:]
            if not nsn or (prefix is not None and prefix(nsn)):
                return None
            kind = type_of(nsn)
            if kind == _UNKNOWN:
                return _invalid(cc, nsn)
            zones, zone = walk(e164) if kind in geographic else nongeo
            return _tuple_new(Normalized, (e164, zone, zones))

        return e164_fast


_code_lanes: dict[str, _CodeLane] = {}


def _code_lane(code: str) -> _CodeLane:
    lane = _code_lanes.get(code)
    if lane is None:
        lane = _code_lanes[code] = _CodeLane(_CALLING_CODES[code])
    return lane


def _e164_digits(e164: str) -> Normalized | PhoneError | None:
    """The fast path for "+" and ASCII digits (checked by the caller); the default region plays
    no part."""
    lane = _code_lanes.get(e164[1:2])  # the usual case: a one-digit code seen before
    if lane is None:
        body = e164[1:]
        code = (
            body[:1] if body[:1] in _CALLING_CODES else body[:2] if body[:2] in _CALLING_CODES else body[:3]
        )
        if code not in _CALLING_CODES:
            return None
        lane = _code_lane(code)
    return lane.e164(e164)


class _Lane:
    """:func:`normalize` for one default region, with every per-region fact bound once as a
    closure variable, and the region's share of the cache.

    ``national(digits)`` is the fast path for ASCII digits without "+" (``None``: ask
    phonenumbers; itself ``None`` when the region has no fast path), ``fast(compact)`` the whole
    fast path and ``normalize(raw)`` :func:`normalize` with the region filled in."""

    __slots__ = ("answers", "fast", "national", "normalize")

    def __init__(self, region: str):
        self.answers: dict[str, Normalized | PhoneError] = {}
        self.national = self._national(region)
        self.fast = self._fast(self.national)
        self.normalize = self._normalize(region, self.national, self.fast, self.answers)

    @staticmethod
    def _national(region: str) -> Callable[[str], Normalized | PhoneError | None] | None:
        typer = _typer(region)
        code = typer.calling_code if typer is not None else None
        lane = _code_lane(code) if code in _CALLING_CODES else None
        if typer is None or lane is None or lane.type_of is None:
            return None
        # Digits starting with the national or international prefix would be rewritten by
        # parse(); unknown ones starting with the calling code may be read as code + number.
        rewrites = typer._rewrite.match if typer._rewrite is not None else None
        cc, code, plus, type_of = lane.cc, lane.code, lane.plus, lane.type_of
        geographic, walk, nongeo = lane.geographic, lane.walk, lane.nongeo

        def national(digits: str) -> Normalized | PhoneError | None:
            if rewrites is not None and rewrites(digits):
                return None
            kind = type_of(digits)
            if kind == _UNKNOWN:
                return None if digits.startswith(code) else _invalid(cc, digits)
            e164 = plus + digits
            zones, zone = walk(e164) if kind in geographic else nongeo
            return _tuple_new(Normalized, (e164, zone, zones))

        return national

    @staticmethod
    def _fast(national) -> Callable[[str], Normalized | PhoneError | None]:
        def fast(compact: str) -> Normalized | PhoneError | None:
            if not compact:
                return None  # only formatting ("-", "( )"): phonenumbers says why it is no number
            if compact[0] == "+":
                return _e164_digits(compact) if compact.isascii() and compact[1:].isdigit() else None
            if national is None or not (compact.isascii() and compact.isdigit()):
                return None
            return national(compact)

        return fast

    @staticmethod
    def _normalize(region: str, national, fast, answers: dict) -> Callable[[str], Normalized | PhoneError]:
        answer = answers.get

        def normalize(raw: str) -> Normalized | PhoneError:
            value = (raw or "").strip()
            if not value:
                return PhoneError("empty")
            # Bare digits and E.164 (most cells) need no stripping and skip fast()'s own shape
            # checks. For the rest, ASCII text is stripped as bytes (_FORMATTING_ASCII).
            if value.isdigit():
                result = national(value) if national is not None and value.isascii() else None
            elif value[0] == "+" and value[1:].isdigit():
                result = _e164_digits(value) if value.isascii() else None
            elif value.isascii():
                result = fast(value.encode().translate(None, _FORMATTING_ASCII).decode())
            else:
                result = fast(value.translate(_FORMATTING))
            if result is None:
                result = answer(value)
                if result is None:
                    result = _slow(value, region)
                    if len(answers) >= _CACHE_LIMIT:
                        answers.clear()  # bounded memory beats a perfect hit rate
                    answers[value] = result
            return result

        return normalize


_lanes: dict[str, _Lane] = {}


def _lane(region: str) -> _Lane:
    lane = _lanes.get(region)
    if lane is None:
        lane = _lanes[region] = _Lane(region)
    return lane


def _fast(compact: str, region: str) -> Normalized | PhoneError | None:
    """The fast path for formatting-free text (``None``: ask phonenumbers)."""
    return _lane(region).fast(compact)


# -- the slow path and the public entry point -----------------------------------------------------


def _slow(raw: str, region: str) -> Normalized | PhoneError:
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        # parse() keeps an exception it handled in a local: a cycle through its frame that pins
        # the callers' frames (a sheet's whole chunk) until the cyclic collector runs. Break it.
        traceback.clear_frames(exc.__traceback__)
        return PhoneError(_PARSE_REASONS.get(exc.error_type, "not a phone number"))
    if number.extension:
        return PhoneError("has an extension; preview dialing cannot reach extensions")
    if not phonenumbers.is_valid_number(number):
        if not phonenumbers.is_possible_number(number):
            return PhoneError("wrong number of digits")
        return PhoneError("not a valid number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    kind = phonenumbers.number_type(number)
    zones = _zones(
        number.country_code, e164[1 + len(str(number.country_code)) :], _geographic(kind, number.country_code)
    )
    return Normalized(e164=e164, timezone=strictest_zone(zones), zones=zones)


_PARSE_REASONS = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def normalize(raw: str, region: str) -> Normalized | PhoneError:
    """Normalise one number as typed in a sheet or sent by a CRM.

    ``region`` is the campaign's default region (ISO 3166 alpha-2) for numbers without ``+``.
    Returns :class:`Normalized` (E.164, stored zone, all zones) or :class:`PhoneError`.
    """
    return _lane(region).normalize(raw)


def normalizer(region: str) -> Callable[[str], Normalized | PhoneError]:
    """``normalize(raw, region)`` with ``region`` bound: for loops over a sheet's rows, which
    then skip the per-call region look-up."""
    return _lane(region).normalize


def clear_cache() -> None:
    """Forget every cached answer (tests, and anyone measuring the uncached cost)."""
    for lane in _lanes.values():
        lane.answers.clear()


def zones_for(e164: str) -> tuple[str, ...]:
    """Every zone a stored E.164 number may be in (the window check intersects them all)."""
    result = normalize(e164, "ZZ")
    return result.zones if isinstance(result, Normalized) else ()

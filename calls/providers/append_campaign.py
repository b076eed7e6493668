"""The Append Campaign JSON body (Ryng seed 002), read.

AgentDesk's intake API (docs/campaigns.md "Intake API") takes the body a CRM already sends Ryng,
whatever the campaign's platform, so a CRM integration needs no change. The body's keys are a
vendor's payload keys: they are read here, next to the adapter that writes the same shape
(``ryng._append_json``), and the intake gets plain rows back.

Plain Python, no Django: :func:`read_body` returns the rows, or raises :class:`BodyError` for a
body that cannot be used at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# agentMapping values: every agent, the body's ``agents`` for every lead, or per lead.
ALL_AGENTS, GLOBAL, INLINE = "all-agents", "global", "inline"
MAPPINGS = (ALL_AGENTS, GLOBAL, INLINE)

FIELD_PREFIX = "customField"
# The columns of every record, before the custom fields (see :attr:`AppendRows.headers`).
NUMBER_COLUMN, AGENTS_COLUMN = "number", "agentsAssigned"


class BodyError(ValueError):
    """The body as a whole is unusable (not an object, no leads, an unknown agentMapping)."""


@dataclass(frozen=True)
class AppendRows:
    """The body's leads as rows.

    ``records``: ``(index in the body, [number, agents joined by ",", *custom fields by number])``
    for every lead that has a number; ``errors``: ``{"index", "field", "reason"}`` for those that
    cannot be read. ``names``: custom field number -> name, for every number in ``order``;
    ``headers``: the body's key for each cell of a record, to name a cell in an error.
    """

    mapping: str
    received: int
    names: dict[int, str]
    order: list[int]
    records: list[tuple[int, list[str]]]
    errors: list[dict[str, Any]]
    headers: tuple[str, ...]


def _field_number(key: Any, suffix: str = "") -> int | None:
    text = str(key)
    if not text.startswith(FIELD_PREFIX) or not text.endswith(suffix):
        return None
    digits = text[len(FIELD_PREFIX) : len(text) - len(suffix)]
    return int(digits) if digits.isdigit() else None


def _field_names(body: Mapping[str, Any], field_names: Sequence[str]) -> dict[int, str]:
    """``customField{N}`` -> name: the body's ``customFieldNames`` first, then the campaign's."""
    names = {i + 1: str(n) for i, n in enumerate(field_names)}
    given = body.get("customFieldNames") or {}
    if not isinstance(given, Mapping):
        raise BodyError('customFieldNames must be an object like {"customField1Name": "Name"}.')
    for key, value in given.items():
        digits = "".join(c for c in str(key) if c.isdigit())
        if not digits or not str(key).startswith(FIELD_PREFIX):
            raise BodyError(f"customFieldNames key {key!r} is not customField{{N}}Name.")
        names[int(digits)] = str(value)
    return names


def read_body(body: Any, *, field_names: Sequence[str] = ()) -> AppendRows:
    """Read an Append Campaign body. ``field_names``: the campaign's custom field names (field 1
    first), which the body's ``customFieldNames`` override; a ``customField{N}`` nobody named
    keeps its key as its name."""
    if not isinstance(body, Mapping):
        raise BodyError("The body must be a JSON object.")
    mapping = body.get("agentMapping", ALL_AGENTS)
    if mapping not in MAPPINGS:
        raise BodyError("agentMapping must be global, inline or all-agents.")
    agents = body.get("agents") or []
    if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
        raise BodyError("agents must be an array of usernames.")
    if mapping == GLOBAL and not agents:
        raise BodyError("agentMapping global needs agents.")
    data = body.get("customerData")
    rows = data.get("jsonData") if isinstance(data, Mapping) else None
    if not isinstance(rows, list) or not rows:
        raise BodyError("customerData.jsonData must be a non-empty array of leads.")
    names = _field_names(body, field_names)
    for row in rows:
        for key in row if isinstance(row, Mapping) else ():
            number = _field_number(key)
            if number is not None and number not in names:
                names[number] = str(key)
    order = sorted(names)
    records: list[tuple[int, list[str]]] = []
    errors: list[dict[str, Any]] = []
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            errors.append({"index": index, "field": "", "reason": "each lead must be an object"})
            continue
        number = row.get("number")
        if not isinstance(number, str | int) or not str(number).strip():
            errors.append({"index": index, "field": NUMBER_COLUMN, "reason": "number is required"})
            continue
        assigned = row.get(AGENTS_COLUMN) or []
        if isinstance(assigned, str):
            assigned = [assigned]
        if not isinstance(assigned, list):
            errors.append({"index": index, "field": AGENTS_COLUMN, "reason": "must be an array of usernames"})
            continue
        if mapping == GLOBAL:
            assigned = agents
        elif mapping == ALL_AGENTS:
            assigned = []
        fields = [
            "" if row.get(f"{FIELD_PREFIX}{n}") is None else str(row.get(f"{FIELD_PREFIX}{n}")) for n in order
        ]
        records.append((index, [str(number), ",".join(str(a) for a in assigned), *fields]))
    return AppendRows(
        mapping=mapping,
        received=len(rows),
        names=names,
        order=order,
        records=records,
        errors=errors,
        headers=(NUMBER_COLUMN, AGENTS_COLUMN, *(f"{FIELD_PREFIX}{n}" for n in order)),
    )

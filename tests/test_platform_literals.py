"""All knowledge of a platform lives in its adapter (docs/providers.md, "Capabilities").

Outside ``calls/providers/``, ``emulators/``, the demo seed (``agentdesk/demo.py``) and
migrations, no code names a platform or reads a vendor's payload key: it asks the adapter
(``calls.providers.provider_class(platform).<capability>``, ``parse``, ``parse_offer``,
``agent_login``). Comments and docstrings may mention platforms (they explain quirks); string
literals, identifiers and imports may not. Templates may name one only inside ``{# #}`` or
``{% comment %}``; the desk's JavaScript only inside comments.

A failure lists ``file:line: what``; the fix is a capability or a normalized key on the adapter,
never an entry in an allow-list here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("agentdesk", "calls", "campaigns")
# Paths (relative, with "/") where platforms are named on purpose.
EXEMPT_PREFIXES = ("calls/providers/",)
EXEMPT_FILES = ("agentdesk/demo.py",)
EXEMPT_DIRS = ("migrations",)

# A platform's name (any case, anywhere in a word: ``huawei_loop``, ``RYNG_KINDS``), GWS included.
PLATFORM = re.compile(r"ryng|huawei|genesys|gws", re.IGNORECASE)
# The vendors' own payload keys: reading one outside an adapter is parsing a platform's payload.
VENDOR_KEYS = frozenset(
    {
        # Ryng callbacks and requests (seeds 000-002)
        "agentID",
        "agentUsername",
        "agentsAssigned",
        "agentMapping",
        "callID",
        "callLogID",
        "callbackType",
        "callDisposed",
        "callStarted",
        "campaignID",
        "connectCallbackUrl",
        "customerData",
        "customerName",
        "customerNumber",
        "customFieldNames",
        "dispositionName",
        "jsonData",
        "legDetails",
        "logID",
        "recordingUrl",
        "talktime",
        "terminalCallbackUrl",
        # Huawei CC-Gateway
        "callData",
        "callcontrolid",
        "controlid",
        "dialeddigits",
        "eventType",
        "phonenum",
        "retcode",
        "workNo",
        # Genesys GWS
        "applicationId",
        "callingList",
        "campaignName",
        "connId",
        "devicePath",
        "messageType",
        "notificationType",
        "operationName",
        "outboundRecord",
        "phoneNumber",
        "recordHandle",
        "statusCode",
        "userData",
        "userState",
    }
)
VENDOR_PREFIXES = ("GSW_",)


def _vendor(word: str) -> bool:
    return word in VENDOR_KEYS or word.startswith(VENDOR_PREFIXES)


def _text_finding(text: str) -> str:
    """Why a string literal names a platform, or ""."""
    match = PLATFORM.search(text)
    if match:
        return f"platform name {match.group(0)!r} in string {text[:60]!r}"
    if _vendor(text.strip()):
        return f"vendor payload key {text.strip()!r}"
    return ""


def _name_finding(name: str | None) -> str:
    """Why an identifier (or a dotted module path) names a platform, or ""."""
    if not name:
        return ""
    for part in name.split("."):
        if PLATFORM.search(part):
            return f"platform name in identifier {name!r}"
        if _vendor(part):
            return f"vendor payload key as identifier {name!r}"
    return ""


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = node.body[0].value if node.body and isinstance(node.body[0], ast.Expr) else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            found.add(id(first))
    return found


def _identifiers(node: ast.AST) -> Iterator[str | None]:
    if isinstance(node, ast.Name):
        yield node.id
    elif isinstance(node, ast.Attribute):
        yield node.attr
    elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        yield node.name
    elif isinstance(node, ast.arg | ast.keyword):
        yield node.arg
    elif isinstance(node, ast.alias):
        yield node.name
        yield node.asname
    elif isinstance(node, ast.ImportFrom):
        yield node.module


def python_findings(source: str, path: str) -> list[str]:
    """``path:line: why`` for every string literal (docstrings excepted) and identifier in
    ``source`` that names a platform or a vendor payload key. Comments are not in the AST."""
    tree = ast.parse(source, filename=path)
    docstrings = _docstrings(tree)
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        why = ""
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            if id(node) not in docstrings:
                text = node.value if isinstance(node.value, str) else node.value.decode("utf-8", "replace")
                why = _text_finding(text)
        else:
            why = next((w for w in map(_name_finding, _identifiers(node)) if w), "")
        if why:
            found.append((getattr(node, "lineno", 0), why))
    return [f"{path}:{line}: {why}" for line, why in sorted(found)]


_TEMPLATE_COMMENTS = re.compile(r"\{#.*?#\}|\{%\s*comment\s*%\}.*?\{%\s*endcomment\s*%\}", re.DOTALL)
_JS_COMMENTS = re.compile(r"/\*.*?\*/|(?<![:\\])//[^\n]*", re.DOTALL)
_VENDOR_WORD = re.compile(
    r"\b(?:" + "|".join(sorted(map(re.escape, VENDOR_KEYS))) + r")\b|\bGSW_\w*", re.IGNORECASE
)


def text_findings(text: str, path: str, comments: re.Pattern[str]) -> list[str]:
    """``path:line: why`` for platform names and vendor keys outside ``comments`` (blanked out
    with their newlines kept, so line numbers stay true)."""
    visible = comments.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    findings = []
    for number, line in enumerate(visible.splitlines(), start=1):
        for pattern, what in ((PLATFORM, "platform name"), (_VENDOR_WORD, "vendor payload key")):
            match = pattern.search(line)
            if match:
                findings.append(f"{path}:{number}: {what} {match.group(0)!r}")
    return findings


def _exempt(relative: str) -> bool:
    parts = relative.split("/")
    return (
        relative.startswith(EXEMPT_PREFIXES)
        or relative in EXEMPT_FILES
        or any(part in EXEMPT_DIRS for part in parts[:-1])
    )


def violations(root: Path = ROOT) -> list[str]:
    """Every finding under ``root``'s code, templates and desk JavaScript."""
    findings = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if not _exempt(relative):
                findings += python_findings(path.read_text(encoding="utf-8"), relative)
    for path in sorted((root / "templates").rglob("*.html")):
        relative = path.relative_to(root).as_posix()
        findings += text_findings(path.read_text(encoding="utf-8"), relative, _TEMPLATE_COMMENTS)
    for path in sorted((root / "static" / "js").rglob("*.js")):
        relative = path.relative_to(root).as_posix()
        findings += text_findings(path.read_text(encoding="utf-8"), relative, _JS_COMMENTS)
    return findings


def test_no_platform_is_named_outside_its_adapter():
    found = violations()
    assert not found, "Platform knowledge outside calls/providers/ (ask the adapter instead):\n" + "\n".join(
        found
    )


# -- the checker itself ---------------------------------------------------------------------------------

PLANTED = '''\
"""A desk module. Docstrings may say Huawei: they explain quirks."""

# Comments may say Genesys too.
from calls.providers import provider_class


def offers(campaign):
    """Ryng does not offer leads."""
    return provider_class(campaign.platform).offers_leads


def planted(campaign):
    if campaign.platform == "ryng":
        return True
    return campaign.offer.get("callData")


def planted_names(huawei_agent_id, **kwargs):
    return dict(GSW_RECORD_HANDLE=1, genesys=huawei_agent_id)
'''


def test_the_checker_flags_what_is_planted_and_spares_comments_and_docstrings():
    found = python_findings(PLANTED, "agentdesk/planted.py")
    lines = sorted({int(f.split(":")[1]) for f in found})
    assert lines == [13, 15, 18, 19], found
    assert sum(":19:" in f for f in found) == 3  # GSW_RECORD_HANDLE=, genesys=, huawei_agent_id
    assert any("'ryng'" in f for f in found)
    assert any("'callData'" in f for f in found)
    assert not python_findings(PLANTED.split("\n\n\ndef planted(")[0], "agentdesk/clean.py")


def test_the_checker_would_fail_on_a_literal_added_in_agentdesk(tmp_path):
    for package in PACKAGES:
        (tmp_path / package / "migrations").mkdir(parents=True)
    (tmp_path / "calls" / "providers").mkdir()
    (tmp_path / "templates" / "desk").mkdir(parents=True)
    (tmp_path / "static" / "js").mkdir(parents=True)
    literal = 'PLATFORM = "huawei"\n'
    (tmp_path / "agentdesk" / "desk.py").write_text(literal)
    # Where platforms are named on purpose, the same line passes.
    for exempt in ("agentdesk/demo.py", "agentdesk/migrations/0009_x.py", "calls/providers/x.py"):
        (tmp_path / exempt).write_text(literal)
    (tmp_path / "templates" / "desk" / "a.html").write_text(
        "{# Genesys: the record handle #}\n{% comment %}Ryng{% endcomment %}\n<p>Huawei</p>\n"
    )
    (tmp_path / "static" / "js" / "a.js").write_text(
        '// Ryng ends on dispose\nconst url = "https://x/";\nconst k = data.recordHandle;\n'
    )
    assert violations(tmp_path) == [
        "agentdesk/desk.py:1: platform name 'huawei' in string 'huawei'",
        "templates/desk/a.html:3: platform name 'Huawei'",
        "static/js/a.js:3: vendor payload key 'recordHandle'",
    ]


@pytest.mark.parametrize(
    ("relative", "exempt"),
    [
        ("calls/providers/ryng.py", True),
        ("calls/migrations/0005_platform_identity.py", True),
        ("agentdesk/demo.py", True),
        ("agentdesk/services.py", False),
        ("calls/services/signals.py", False),
        ("campaigns/demo.py", False),
    ],
)
def test_exemptions_are_exactly_the_documented_ones(relative, exempt):
    assert _exempt(relative) is exempt

"""Django's ``{# #}`` comment holds one line: one that runs onto the next is not a comment, and
the page prints it as text (the desk's campaign bar did). Longer comments are ``{% comment %}``."""

from __future__ import annotations

import re
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def test_no_template_comment_runs_onto_a_second_line():
    unclosed = re.compile(r"\{#(?:(?!#\}).)*$", re.MULTILINE)
    found = [
        f"{path.relative_to(TEMPLATES)}:{text[: match.start()].count(chr(10)) + 1}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for text in [path.read_text()]
        for match in unclosed.finditer(text)
    ]
    assert not found, found

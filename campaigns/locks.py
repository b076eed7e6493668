"""Transaction-scoped locks shared by every writer of a campaign's sheet and intake leads."""

from __future__ import annotations

from django.db import connection

# The first key of PostgreSQL's two-key advisory locks: "lead appends", the second is the campaign.
LEAD_APPEND = 0x4C454144  # "LEAD"


def lead_append_lock(campaign_id: int) -> None:
    """Serialize appends of sheet and intake leads to one campaign until the transaction ends.

    Every such writer takes it (the importer's insert, the intake API), so a writer that has it
    knows exactly which numbers the campaign holds and can insert without ``ON CONFLICT`` (whose
    speculative insertion costs a fifth of a big import, BENCHMARKS.md). Nothing else waits on
    it: desks, dials and campaign edits never take it. SQLite serializes writers already."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LEAD_APPEND, campaign_id])

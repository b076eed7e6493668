"""Lead counts per campaign and status, kept by triggers (``campaigns.models.LeadCount``).

At millions of leads, counting a campaign's leads by status is a scan of its partition (the
campaigns page took 3.4-4.8 s at 2.6 million). The database keeps the counts instead, in the
transaction of every statement that changes them:

* PostgreSQL: statement-level triggers with transition tables for INSERT and DELETE (a
  million-row import or undo adds its net change per (campaign, status) with one
  ``INSERT ... ON CONFLICT DO UPDATE`` or one ``UPDATE``), and a row trigger for an UPDATE that
  changes a lead's status or campaign (one a disposition), whose ``WHEN`` keeps it from firing at
  all for the updates that change neither (a lease, a renewal: the desk's hot path; a statement
  trigger cost them about 0.3 ms each). Counters are locked lower (campaign, status) first, by
  every writer. A partition the importer attaches whole fires no trigger: it is counted when
  attached (``campaigns.partitions._attach``). A sheet's import into a campaign agents are
  working inserts for seconds inside one transaction; counted by the trigger, its first
  statement would lock the campaign's "pending" counter until COMMIT and every disposition in
  the campaign would wait for it. So the importer says ``SET LOCAL agentdesk.lead_counts =
  'later'``, which the INSERT trigger honours, and adds its count itself at the end
  (``campaigns.importer.Stage.insert``).
* SQLite (the embedded default): row triggers with the same effect.

A deleted campaign's counters go with it (a trigger on ``campaigns_campaign``). The counts of the
leads already there are taken once, here, under the triggers' own table lock.
"""

from django.db import migrations, models

UPSERT = (
    "INSERT INTO campaigns_leadcount (campaign_id, status, n) {rows}"
    " ON CONFLICT (campaign_id, status) DO UPDATE SET n = campaigns_leadcount.n + EXCLUDED.n"
)

POSTGRES_UP = f"""
CREATE FUNCTION campaigns_lead_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A sheet's import counts its leads itself, just before it commits (see the docstring).
        IF coalesce(current_setting('agentdesk.lead_counts', true), '') = 'later' THEN
            RETURN NULL;
        END IF;
        {UPSERT.format(rows="SELECT campaign_id, status, count(*) FROM new_leads GROUP BY 1, 2 ORDER BY 1, 2")};
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE campaigns_leadcount c SET n = c.n - gone.k
        FROM (SELECT campaign_id, status, count(*) AS k FROM old_leads GROUP BY 1, 2) gone
        WHERE c.campaign_id = gone.campaign_id AND c.status = gone.status;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campaigns_lead_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Every writer locks the two counters in one order, the lower (campaign, status) first.
    IF (OLD.campaign_id, OLD.status) < (NEW.campaign_id, NEW.status) THEN
        UPDATE campaigns_leadcount SET n = n - 1 WHERE campaign_id = OLD.campaign_id AND status = OLD.status;
        {UPSERT.format(rows="VALUES (NEW.campaign_id, NEW.status, 1)")};
    ELSE
        {UPSERT.format(rows="VALUES (NEW.campaign_id, NEW.status, 1)")};
        UPDATE campaigns_leadcount SET n = n - 1 WHERE campaign_id = OLD.campaign_id AND status = OLD.status;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campaigns_campaign_counts_gone() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM campaigns_leadcount WHERE campaign_id = OLD.id;
    RETURN NULL;
END $$;

CREATE TRIGGER lead_count_insert AFTER INSERT ON campaigns_lead
    REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_lead_count();
CREATE TRIGGER lead_count_update AFTER UPDATE OF status, campaign_id ON campaigns_lead
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.campaign_id IS DISTINCT FROM NEW.campaign_id)
    EXECUTE FUNCTION campaigns_lead_count_moved();
CREATE TRIGGER lead_count_delete AFTER DELETE ON campaigns_lead
    REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_lead_count();
CREATE TRIGGER campaign_counts_gone AFTER DELETE ON campaigns_campaign
    FOR EACH ROW EXECUTE FUNCTION campaigns_campaign_counts_gone();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS campaign_counts_gone ON campaigns_campaign;
DROP TRIGGER IF EXISTS lead_count_delete ON campaigns_lead;
DROP TRIGGER IF EXISTS lead_count_update ON campaigns_lead;
DROP TRIGGER IF EXISTS lead_count_insert ON campaigns_lead;
DROP FUNCTION IF EXISTS campaigns_campaign_counts_gone();
DROP FUNCTION IF EXISTS campaigns_lead_count_moved();
DROP FUNCTION IF EXISTS campaigns_lead_count();
"""

# SQLite: a count is taken away only from a counter that is there, so emptying the tables in
# any order (a test's flush, a campaign deleted with its leads) leaves no counter behind.
_ADD = (
    "INSERT INTO campaigns_leadcount (campaign_id, status, n) SELECT NEW.campaign_id, NEW.status, 1 WHERE true"
    " ON CONFLICT (campaign_id, status) DO UPDATE SET n = n + 1;"
)
_TAKE = "UPDATE campaigns_leadcount SET n = n - 1 WHERE campaign_id = OLD.campaign_id AND status = OLD.status;"

SQLITE_UP = [
    f"CREATE TRIGGER lead_count_insert AFTER INSERT ON campaigns_lead BEGIN {_ADD} END",
    "CREATE TRIGGER lead_count_update AFTER UPDATE OF status, campaign_id ON campaigns_lead"
    " WHEN OLD.status IS NOT NEW.status OR OLD.campaign_id IS NOT NEW.campaign_id"
    f" BEGIN {_TAKE} {_ADD} END",
    f"CREATE TRIGGER lead_count_delete AFTER DELETE ON campaigns_lead BEGIN {_TAKE} END",
    "CREATE TRIGGER campaign_counts_gone AFTER DELETE ON campaigns_campaign"
    " BEGIN DELETE FROM campaigns_leadcount WHERE campaign_id = OLD.id; END",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS campaign_counts_gone",
    "DROP TRIGGER IF EXISTS lead_count_delete",
    "DROP TRIGGER IF EXISTS lead_count_update",
    "DROP TRIGGER IF EXISTS lead_count_insert",
]

BACKFILL = UPSERT.format(rows="SELECT campaign_id, status, count(*) FROM campaigns_lead GROUP BY 1, 2 ORDER BY 1, 2")


def up(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)
    else:
        return
    schema_editor.execute(BACKFILL)


def down(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0016_resumable_upload"),
    ]

    operations = [
        migrations.CreateModel(
            name="LeadCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Waiting to be called"),
                            ("in_progress", "Call in progress"),
                            ("callback", "Callback booked"),
                            ("done", "Done"),
                            ("dnc", "Do not call"),
                            ("exhausted", "Attempts used up"),
                        ],
                        max_length=12,
                    ),
                ),
                ("n", models.BigIntegerField(default=0)),
                (
                    "campaign",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="campaigns.campaign",
                    ),
                ),
            ],
            options={
                "constraints": [models.UniqueConstraint(fields=("campaign", "status"), name="lead_count_unique")],
            },
        ),
        migrations.RunPython(up, down, elidable=False),
    ]

"""Keep the lead -> campaign reference with triggers instead of a FOREIGN KEY.

PostgreSQL checks a foreign key once per inserted row (a deferred RI trigger: ~5 s at COMMIT for
a million-row import). These triggers keep the same guarantee with one check per INSERT
statement:

* ``lead_campaign_exists`` (AFTER INSERT, FOR EACH STATEMENT, transition table ``new_leads``):
  every campaign the statement's rows name must exist; they are locked FOR KEY SHARE, as the
  foreign key's check locks them, so a concurrent delete of one waits for this transaction.
* ``lead_campaign_moved`` (AFTER UPDATE, FOR EACH ROW, only when ``campaign_id`` changes): the
  same for a lead moved to another campaign.
* ``campaign_has_leads`` (a constraint trigger AFTER DELETE on campaigns, DEFERRABLE INITIALLY
  DEFERRED like Django's foreign keys): at COMMIT, a deleted campaign must have no lead left.
  Django's collector deletes the leads first (``on_delete=CASCADE``), so deleting a campaign
  through the ORM works as before; a bare ``DELETE`` of a campaign with leads is refused.

SQLite (the embedded default) gets row triggers with the same effect: an insert or move to a
missing campaign aborts, and deleting a campaign deletes its leads (so a test flush may empty
the tables in any order).
"""

from django.db import migrations, models

POSTGRES_UP = """
CREATE FUNCTION campaigns_lead_campaign_exists() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    wanted bigint;
    found bigint;
BEGIN
    SELECT count(DISTINCT campaign_id) INTO wanted FROM new_leads;
    SELECT count(*) INTO found FROM (
        SELECT 1 FROM campaigns_campaign c
        WHERE c.id IN (SELECT campaign_id FROM new_leads) FOR KEY SHARE OF c
    ) locked;
    IF found <> wanted OR EXISTS (SELECT 1 FROM new_leads WHERE campaign_id IS NULL) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'insert or update on table "campaigns_lead" violates the campaign reference',
            DETAIL = 'A lead names a campaign that does not exist.';
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campaigns_lead_campaign_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM campaigns_campaign WHERE id = NEW.campaign_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'insert or update on table "campaigns_lead" violates the campaign reference',
            DETAIL = format('Campaign %s does not exist.', NEW.campaign_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campaigns_campaign_has_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM campaigns_lead WHERE campaign_id = OLD.id) THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'delete on table "campaigns_campaign" violates the campaign reference',
            DETAIL = format('Campaign %s still has leads.', OLD.id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER lead_campaign_exists AFTER INSERT ON campaigns_lead
    REFERENCING NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_lead_campaign_exists();
CREATE TRIGGER lead_campaign_moved AFTER UPDATE ON campaigns_lead
    FOR EACH ROW WHEN (OLD.campaign_id IS DISTINCT FROM NEW.campaign_id)
    EXECUTE FUNCTION campaigns_lead_campaign_moved();
CREATE CONSTRAINT TRIGGER campaign_has_leads AFTER DELETE ON campaigns_campaign
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION campaigns_campaign_has_leads();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS campaign_has_leads ON campaigns_campaign;
DROP TRIGGER IF EXISTS lead_campaign_moved ON campaigns_lead;
DROP TRIGGER IF EXISTS lead_campaign_exists ON campaigns_lead;
DROP FUNCTION IF EXISTS campaigns_campaign_has_leads();
DROP FUNCTION IF EXISTS campaigns_lead_campaign_moved();
DROP FUNCTION IF EXISTS campaigns_lead_campaign_exists();
"""

SQLITE_UP = [
    """CREATE TRIGGER lead_campaign_exists BEFORE INSERT ON campaigns_lead
    WHEN NOT EXISTS (SELECT 1 FROM campaigns_campaign WHERE id = NEW.campaign_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the lead''s campaign does not exist'); END""",
    """CREATE TRIGGER lead_campaign_moved BEFORE UPDATE OF campaign_id ON campaigns_lead
    WHEN NOT EXISTS (SELECT 1 FROM campaigns_campaign WHERE id = NEW.campaign_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the lead''s campaign does not exist'); END""",
    """CREATE TRIGGER campaign_has_leads AFTER DELETE ON campaigns_campaign
    BEGIN DELETE FROM campaigns_lead WHERE campaign_id = OLD.id; END""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS campaign_has_leads",
    "DROP TRIGGER IF EXISTS lead_campaign_moved",
    "DROP TRIGGER IF EXISTS lead_campaign_exists",
]


def up(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_UP, params=None)  # no placeholders: format('%s')
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_UP:
            schema_editor.execute(statement)


def down(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DOWN, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_DOWN:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0004_lead_offer_idx"),
    ]

    operations = [
        migrations.AlterField(
            model_name="lead",
            name="campaign",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="leads",
                to="campaigns.campaign",
            ),
        ),
        migrations.RunPython(up, down, elidable=False),
    ]

"""Keep the call -> lead reference with triggers instead of a FOREIGN KEY.

``campaigns_lead`` becomes a table partitioned by campaign on PostgreSQL (campaigns migration
0007): a big sheet imported into a new campaign is built as its own table, indexed by sorting
and attached, instead of entering every B-tree one row at a time. PostgreSQL's unique keys on a
partitioned table must contain the partition key, so ``campaigns_lead.id`` alone can no longer
be the target of a FOREIGN KEY. These triggers keep the guarantee the foreign key gave:

* ``call_lead_exists`` / ``call_lead_moved`` (constraint triggers on ``calls_call``, DEFERRABLE
  INITIALLY DEFERRED like Django's foreign keys, on INSERT and when an UPDATE changes
  ``lead_id``): at COMMIT the call's lead must exist; it is locked FOR KEY SHARE, as the foreign
  key's check locks it, so a concurrent delete of that lead waits for this transaction. Like the
  foreign key's own check, an UPDATE that leaves ``lead_id`` as it was (every ``Call.save()``)
  checks nothing: a FOR KEY SHARE at each such COMMIT would also take a lock on
  ``campaigns_lead`` that the foreign key never took.
* ``lead_has_calls`` (AFTER DELETE on ``campaigns_lead``, once per statement, transition table
  ``old_leads``): no call may be left naming a deleted lead. Django's collector deletes a lead's
  calls first (``on_delete=CASCADE``), so deleting through the ORM works as before; a bare
  ``DELETE`` of a lead with calls is refused.

SQLite (the embedded default) gets row triggers with the same effect: a call naming a missing
lead aborts, and deleting a lead deletes its calls (so a test flush may empty the tables in any
order). An ``AlterField`` that rebuilds ``calls_call`` on SQLite would drop them with the old
table: re-create them in that migration.
"""

from django.db import migrations, models

POSTGRES_UP = """
CREATE FUNCTION calls_call_lead_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM campaigns_lead WHERE id = NEW.lead_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'insert or update on table "calls_call" violates the lead reference',
            DETAIL = format('Lead %s does not exist.', NEW.lead_id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION campaigns_lead_has_calls() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    orphan bigint;
BEGIN
    SELECT c.lead_id INTO orphan FROM calls_call c WHERE c.lead_id IN (SELECT id FROM old_leads) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = 'delete on table "campaigns_lead" violates the lead reference',
            DETAIL = format('Lead %s still has calls.', orphan);
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER call_lead_exists AFTER INSERT ON calls_call
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION calls_call_lead_exists();
CREATE CONSTRAINT TRIGGER call_lead_moved AFTER UPDATE OF lead_id ON calls_call
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.lead_id IS DISTINCT FROM NEW.lead_id)
    EXECUTE FUNCTION calls_call_lead_exists();
CREATE TRIGGER lead_has_calls AFTER DELETE ON campaigns_lead
    REFERENCING OLD TABLE AS old_leads
    FOR EACH STATEMENT EXECUTE FUNCTION campaigns_lead_has_calls();
"""

POSTGRES_DOWN = """
DROP TRIGGER IF EXISTS lead_has_calls ON campaigns_lead;
DROP TRIGGER IF EXISTS call_lead_moved ON calls_call;
DROP TRIGGER IF EXISTS call_lead_exists ON calls_call;
DROP FUNCTION IF EXISTS campaigns_lead_has_calls();
DROP FUNCTION IF EXISTS calls_call_lead_exists();
"""

SQLITE_UP = [
    """CREATE TRIGGER call_lead_exists BEFORE INSERT ON calls_call
    WHEN NOT EXISTS (SELECT 1 FROM campaigns_lead WHERE id = NEW.lead_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the call''s lead does not exist'); END""",
    """CREATE TRIGGER call_lead_moved BEFORE UPDATE OF lead_id ON calls_call
    WHEN NOT EXISTS (SELECT 1 FROM campaigns_lead WHERE id = NEW.lead_id)
    BEGIN SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: the call''s lead does not exist'); END""",
    """CREATE TRIGGER lead_has_calls AFTER DELETE ON campaigns_lead
    BEGIN DELETE FROM calls_call WHERE lead_id = OLD.id; END""",
]

SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS lead_has_calls",
    "DROP TRIGGER IF EXISTS call_lead_moved",
    "DROP TRIGGER IF EXISTS call_lead_exists",
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
        ("calls", "0003_platform_presence"),
        ("campaigns", "0006_lead_fewer_insert_indexes"),
    ]

    operations = [
        migrations.AlterField(
            model_name="call",
            name="lead",
            field=models.ForeignKey(
                db_constraint=False,
                on_delete=models.deletion.CASCADE,
                related_name="calls",
                to="campaigns.lead",
            ),
        ),
        migrations.RunPython(up, down, elidable=False),
    ]

"""Numbers in the "C" collation on PostgreSQL: ``campaigns_lead.number`` and
``campaigns_donotcall.number``.

A number is E.164 text, "+" and ASCII digits, where every collation sorts the same. The database's
own (``C.UTF-8`` here, ``en_US.UTF-8`` elsewhere) compares through the C library's ``strcoll``
and so gets no abbreviated keys in a sort: building the unique index on (campaign, number) for a
million leads took 2.2-2.5 s, in "C" 1.6 s (BENCHMARKS.md, "Seventh round"). Both columns change
together: SQL compares them with each other (the do-not-call list against leads and staged rows),
and two columns of different collations cannot be compared. Every partition follows the parent;
the indexes on the columns are rebuilt. A staging table takes its columns' collations from
``campaigns_lead`` when it is made (``LIKE``): ``campaigns.importer.STAGE_FORMAT`` 4 sends older
stages back to be checked again.

The models do not say so (``db_collation`` would be written for SQLite too, which has no "C"): a
later migration that alters either field must keep ``COLLATE "C"`` on PostgreSQL. SQLite compares
text bytewise already.
"""

from django.db import migrations

COLUMNS = (("campaigns_lead", "number"), ("campaigns_donotcall", "number"))


def _collate(schema_editor, collation: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in COLUMNS:
        schema_editor.execute(
            f'ALTER TABLE {table} ALTER COLUMN {column} TYPE varchar(20) COLLATE "{collation}"'
        )


def up(apps, schema_editor):
    _collate(schema_editor, "C")


def down(apps, schema_editor):
    _collate(schema_editor, "default")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0007_lead_partitions")]

    operations = [migrations.RunPython(up, down, elidable=False)]

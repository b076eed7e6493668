"""Two fewer B-tree entries per imported lead (BENCHMARKS.md, docs/import.md "Lead indexes").

* ``upload``: no index and ``on_delete=DO_NOTHING``. Nothing looks leads up by upload; the index
  only served Django's ``SET NULL`` when an upload is deleted, which happens only when its
  campaign is deleted, and that deletes the leads too.
* ``lead_lease_idx`` becomes partial (``lease_owner_id IS NOT NULL``): every lookup by lease
  names an owner or asks for one, and a lead fresh from a sheet has none.

The upload index is dropped with SQL rather than ``AlterField``: on SQLite an altered field
rebuilds ``campaigns_lead``, which would drop migration 0005's triggers with the old table.
"""

from django.db import migrations, models
import django.db.models.deletion


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0005_lead_campaign_reference_triggers"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lead",
                    name="upload",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="leads",
                        to="campaigns.sheetupload",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "campaigns_lead_upload_id_ec032dc1"',
                    reverse_sql='CREATE INDEX "campaigns_lead_upload_id_ec032dc1" ON "campaigns_lead" ("upload_id")',
                ),
            ],
        ),
        migrations.RemoveIndex(model_name="lead", name="lead_lease_idx"),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                condition=models.Q(("lease_owner__isnull", False)),
                fields=["lease_owner", "lease_expires_at"],
                name="lead_lease_idx",
            ),
        ),
    ]

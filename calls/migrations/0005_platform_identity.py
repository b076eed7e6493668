"""Agents' platform identities move from columns on ``agentdesk.Agent`` (one per platform) to
``PlatformIdentity`` rows (one per agent and platform, read by the platform's adapter); the
columns are dropped by ``agentdesk`` 0003. Help texts now follow the adapters' hints."""

import django.db.models.deletion
from django.db import migrations, models

# platform -> {PlatformIdentity field: the old Agent column}, as the columns were on 0002.
COLUMNS = {
    "ryng": {"ref": "ryng_agent_id", "username": "ryng_username"},
    "huawei": {"ref": "huawei_agent_id", "phone": "huawei_phone"},
    "genesys": {"ref": "genesys_username"},
}


def columns_to_rows(apps, schema_editor):
    Agent = apps.get_model("agentdesk", "Agent")
    PlatformIdentity = apps.get_model("calls", "PlatformIdentity")
    rows = []
    for agent in Agent.objects.all().iterator():
        for platform, fields in COLUMNS.items():
            values = {field: getattr(agent, column) or "" for field, column in fields.items()}
            if any(values.values()):
                rows.append(PlatformIdentity(agent_id=agent.pk, platform=platform, **values))
    PlatformIdentity.objects.bulk_create(rows, batch_size=500)


def rows_to_columns(apps, schema_editor):
    Agent = apps.get_model("agentdesk", "Agent")
    PlatformIdentity = apps.get_model("calls", "PlatformIdentity")
    for identity in PlatformIdentity.objects.filter(platform__in=COLUMNS).iterator():
        fields = COLUMNS[identity.platform]
        Agent.objects.filter(pk=identity.agent_id).update(
            **{column: getattr(identity, field) for field, column in fields.items()}
        )


class Migration(migrations.Migration):
    dependencies = [
        ("agentdesk", "0002_agent_desk_campaign"),
        ("calls", "0004_call_lead_reference_triggers"),
    ]

    operations = [
        migrations.AlterField(
            model_name="telephonyaccount",
            name="base_url",
            field=models.URLField(
                help_text="Ryng: …/rest-api/v1; Huawei CC-Gateway: …/agentgateway/resource; Genesys GWS: …/api/v2"
            ),
        ),
        migrations.CreateModel(
            name="PlatformIdentity",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "platform",
                    models.CharField(
                        choices=[("ryng", "Ryng"), ("huawei", "Huawei CC-Gateway"), ("genesys", "Genesys GWS")],
                        max_length=10,
                    ),
                ),
                ("ref", models.CharField(blank=True, max_length=150, verbose_name="agent id")),
                ("username", models.CharField(blank=True, max_length=150)),
                ("phone", models.CharField(blank=True, max_length=32)),
                (
                    "agent",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="identities",
                        to="agentdesk.agent",
                    ),
                ),
            ],
            options={
                "verbose_name_plural": "platform identities",
                "ordering": ["agent", "platform"],
                "constraints": [
                    models.UniqueConstraint(fields=("agent", "platform"), name="platform_identity_unique")
                ],
            },
        ),
        migrations.RunPython(columns_to_rows, rows_to_columns),
    ]

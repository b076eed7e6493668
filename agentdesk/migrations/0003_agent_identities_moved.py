"""The per-platform identity columns are gone: ``calls.PlatformIdentity`` holds them (its
migration 0005 carried the values over first)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("agentdesk", "0002_agent_desk_campaign"),
        ("calls", "0005_platform_identity"),
    ]

    operations = [
        migrations.RemoveField(model_name="agent", name="genesys_username"),
        migrations.RemoveField(model_name="agent", name="huawei_agent_id"),
        migrations.RemoveField(model_name="agent", name="huawei_phone"),
        migrations.RemoveField(model_name="agent", name="ryng_agent_id"),
        migrations.RemoveField(model_name="agent", name="ryng_username"),
    ]

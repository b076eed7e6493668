"""The ready index by zone (campaign, timezone, id): the desk offers only leads whose calling
window is open now, one walk per open zone (agentdesk.services._open_zone_queues), instead of
offering a lead the dial then refuses for the hour. An index only: on PostgreSQL the statements
act on the partitioned ``campaigns_lead`` and so on every partition (migration 0010)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agentdesk', '0005_audit_entry'),
        ('campaigns', '0013_upload_step_undo'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='lead',
            name='lead_ready_idx',
        ),
        migrations.AddIndex(
            model_name='lead',
            index=models.Index(condition=models.Q(('next_attempt_at__isnull', True), ('status__in', ['pending', 'callback']), models.Q(('source', 'platform'), _negated=True)), fields=['campaign', 'timezone', 'id'], name='lead_ready_idx'),
        ),
    ]

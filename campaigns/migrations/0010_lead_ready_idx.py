"""The desk's next lead walks only the leads that may be called now (docs/desk.md, "The queue").

``lead_offer_idx`` held every pending lead and callback, so on a worked campaign the lease walked
the ones waiting on a retry delay and filtered them out one by one (90% of a campaign: 94 ms a
lease at 100,000 leads, over a second at a million). ``lead_ready_idx`` leaves out a lead with
``next_attempt_at`` set; the lease clears it once it has passed (``_promote_due``) before it
looks, so no data migration is needed: leads already due join at the next lease.

On PostgreSQL both statements act on the partitioned ``campaigns_lead`` and so on every
partition (``DROP INDEX`` of a partitioned index drops its partitions' ones; ``CREATE INDEX``
builds one on each); ``campaigns.partitions`` copies the new definition onto a partition it
builds. An index only: no column, so no table rebuild on SQLite.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('agentdesk', '0003_agent_identities_moved'),
        ('campaigns', '0009_campaign_help_from_adapters'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='lead',
            name='lead_offer_idx',
        ),
        migrations.AddIndex(
            model_name='lead',
            index=models.Index(condition=models.Q(('next_attempt_at__isnull', True), ('status__in', ['pending', 'callback']), models.Q(('source', 'platform'), _negated=True)), fields=['campaign', 'id'], name='lead_ready_idx'),
        ),
    ]

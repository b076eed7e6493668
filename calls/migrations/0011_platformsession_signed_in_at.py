from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("calls", "0010_call_platform_end"),
    ]

    operations = [
        migrations.AddField(
            model_name="platformsession",
            name="signed_in_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]

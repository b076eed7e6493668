"""Help texts that follow the platform adapters' hints (no schema change)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0008_number_collation_c"),
    ]

    operations = [
        migrations.AlterField(
            model_name="campaign",
            name="platform_campaign_id",
            field=models.CharField(
                blank=True,
                help_text=(
                    "The campaign on the platform: Ryng: campaignID (a number); Huawei CC-Gateway: campaign;"
                    " Genesys GWS: campaign name."
                ),
                max_length=120,
            ),
        ),
        migrations.AlterField(
            model_name="campaign",
            name="push_format",
            field=models.CharField(
                choices=[("json", "JSON body"), ("csv", "CSV sheet (form-data)")],
                default="json",
                help_text="How leads are pushed to a platform that takes pushed leads (Append Campaign).",
                max_length=4,
            ),
        ),
    ]

from django.db import migrations, models


class Migration(migrations.Migration):
    # The audit target was cut at 512 characters: a long path or list of keys lost its end.
    dependencies = [
        ("hosts", "0004_operator_profiles"),
    ]

    operations = [
        migrations.AlterField(
            model_name="auditentry",
            name="target",
            field=models.TextField(blank=True),
        ),
    ]

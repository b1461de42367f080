# A host is no longer registered for one LXD project: the dashboard covers every project its
# certificate may see, and each page names the one it shows (?project=); a backup schedule's
# project now picks instances, not hosts.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0008_live_model'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='host',
            name='project',
        ),
        migrations.AlterField(
            model_name='backupschedule',
            name='project',
            field=models.CharField(blank=True, help_text='only instances in this LXD project; empty: every project', max_length=63),
        ),
    ]

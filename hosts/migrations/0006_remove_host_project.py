# A host is no longer registered for one LXD project: the dashboard covers every project its
# certificate may see, and each page names the one it shows (?project=).

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0005_audit_target_text'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='host',
            name='project',
        ),
    ]

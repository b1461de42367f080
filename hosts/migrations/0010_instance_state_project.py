# The live model covers every LXD project of a host: one name may be in two projects, each its
# own row.  A model written before covered the default project only: it is dropped (with how
# far it was trusted), so no page takes it for the whole host; the relay lists every host
# again when it starts.

from django.db import migrations, models


def forget_default_only_model(apps, schema_editor):
    apps.get_model('hosts', 'InstanceState').objects.all().delete()
    apps.get_model('hosts', 'HostSync').objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('hosts', '0009_remove_host_project'),
    ]

    operations = [
        migrations.AlterModelOptions(
            name='instancestate',
            options={'ordering': ['host', 'name', 'project']},
        ),
        migrations.RemoveConstraint(
            model_name='instancestate',
            name='instance_state_once_per_host',
        ),
        migrations.AddField(
            model_name='instancestate',
            name='project',
            field=models.CharField(default='default', max_length=63),
        ),
        migrations.AddConstraint(
            model_name='instancestate',
            constraint=models.UniqueConstraint(fields=('host', 'project', 'name'), name='instance_state_once_per_host_project'),
        ),
        # After the schema changes: PostgreSQL refuses to alter a table with rows changed earlier
        # in the same transaction (pending trigger events).
        migrations.RunPython(forget_default_only_model, migrations.RunPython.noop),
    ]

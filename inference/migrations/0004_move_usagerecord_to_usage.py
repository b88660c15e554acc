"""UsageRecord now belongs to the usage app (usage 0001): forget it here, keep the table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('inference', '0003_usagerecord'),
        ('usage', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name='UsageRecord')]),
    ]

"""UsageRecord moves here from the inference app: same table, no data copied.

Only Django's state changes (SeparateDatabaseAndState); inference 0004 drops the model from the
inference app's state. Content types and admin permissions follow the model to its new app.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def move_content_type(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="usage", model="usagerecord").exists():
        ContentType.objects.filter(app_label="inference", model="usagerecord").update(app_label="usage")


def move_content_type_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label="inference", model="usagerecord").exists():
        ContentType.objects.filter(app_label="usage", model="usagerecord").update(app_label="inference")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0003_apikey_limit_overrides'),
        ('contenttypes', '0002_remove_content_type_name'),
        ('inference', '0003_usagerecord'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='UsageRecord',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('model', models.CharField(max_length=200)),
                        ('endpoint', models.CharField(max_length=64)),
                        ('prompt_tokens', models.PositiveIntegerField(default=0)),
                        ('completion_tokens', models.PositiveIntegerField(default=0)),
                        ('latency_ms', models.PositiveIntegerField(default=0)),
                        ('ttft_ms', models.PositiveIntegerField(blank=True, null=True)),
                        ('status_code', models.PositiveSmallIntegerField()),
                        ('error_code', models.CharField(blank=True, max_length=64)),
                        ('cached', models.BooleanField(default=False)),
                        ('streamed', models.BooleanField(default=False)),
                        ('client_disconnected', models.BooleanField(default=False)),
                        ('request_id', models.CharField(blank=True, max_length=128)),
                        ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                        ('api_key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='usage_records', to='accounts.apikey')),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='usage_records', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'inference_usagerecord',
                        'ordering': ['-created_at'],
                        'indexes': [models.Index(fields=['user', 'created_at'], name='inference_u_user_id_0e0828_idx'), models.Index(fields=['api_key', 'created_at'], name='inference_u_api_key_14e749_idx')],
                    },
                ),
            ],
            database_operations=[migrations.RunPython(move_content_type, move_content_type_back)],
        ),
    ]

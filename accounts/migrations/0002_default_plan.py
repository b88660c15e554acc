from django.db import migrations


def create_free_plan(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    if not Plan.objects.filter(is_default=True).exists():
        Plan.objects.update_or_create(
            name="Free",
            defaults={
                "requests_per_minute": 20,
                "tokens_per_minute": 20_000,
                "tokens_per_day": 200_000,
                "max_tokens_per_request": 1024,
                "allowed_models": [],
                "is_default": True,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(create_free_plan, migrations.RunPython.noop)]

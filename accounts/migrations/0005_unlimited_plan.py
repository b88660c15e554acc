from django.db import migrations

# The largest value a PositiveIntegerField holds: "no limit" spelled out, not implied by a missing plan.
UNLIMITED = 2_147_483_647


def create_unlimited_plan(apps, schema_editor):
    Plan = apps.get_model("accounts", "Plan")
    Plan.objects.get_or_create(
        name="Unlimited",
        defaults={
            "requests_per_minute": UNLIMITED,
            "tokens_per_minute": UNLIMITED,
            "tokens_per_day": UNLIMITED,
            "max_tokens_per_request": UNLIMITED,
            "max_prompt_tokens_per_request": UNLIMITED,
            "max_concurrent_requests": UNLIMITED,
            "allowed_models": [],
            "is_default": False,
        },
    )


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_plan_prompt_and_concurrency_caps")]
    operations = [migrations.RunPython(create_unlimited_plan, migrations.RunPython.noop)]

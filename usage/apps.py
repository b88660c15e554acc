from django.apps import AppConfig


class UsageConfig(AppConfig):
    """Usage records, limits and budgets, metering of every entry point, dashboards, metrics."""

    name = "usage"
    default_auto_field = "django.db.models.BigAutoField"

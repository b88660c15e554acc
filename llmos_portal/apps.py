from django.apps import AppConfig


class PortalConfig(AppConfig):
    """The project package as an app: settings-wide system checks and shared templates."""

    name = "llmos_portal"
    verbose_name = "LLM OS Portal"

    def ready(self) -> None:
        from llmos_portal import checks  # noqa: F401 - registers system checks

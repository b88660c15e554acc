from django.apps import AppConfig


class BatchesConfig(AppConfig):
    """OpenAI's Files and Batch APIs: JSONL files, batch jobs run line by line off the request path."""

    name = "batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from batches import checks  # noqa: F401 - registers system checks

from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class InferenceConfig(AppConfig):
    name = "inference"

    def ready(self) -> None:
        from inference import checks  # noqa: F401 - registers system checks
        from inference.engine import router
        from inference.metrics import observe_deployment
        from inference.models import Deployment, RegisteredModel
        from inference.registry import forget_cached_specs

        post_save.connect(forget_cached_specs, sender=RegisteredModel, dispatch_uid="registry-save")
        post_delete.connect(forget_cached_specs, sender=RegisteredModel, dispatch_uid="registry-delete")
        post_save.connect(forget_cached_specs, sender=Deployment, dispatch_uid="registry-deployment-save")
        post_delete.connect(forget_cached_specs, sender=Deployment, dispatch_uid="registry-deployment-delete")
        router.set_observer(observe_deployment)

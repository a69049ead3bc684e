from __future__ import annotations

from django.apps import AppConfig


class AnnotateConfig(AppConfig):
    name = "annotate"
    verbose_name = "Annotation"

    def ready(self) -> None:
        # The broker folder must exist before the first task is sent (filesystem transport).
        from django.conf import settings

        from annotate import receivers  # noqa: F401  (connects the signal receivers)

        if not getattr(settings, "REDIS_URL", ""):
            (settings.CELERY_BROKER_DIR / "queue").mkdir(parents=True, exist_ok=True)
            (settings.CELERY_BROKER_DIR / "processed").mkdir(parents=True, exist_ok=True)
            (settings.CELERY_BROKER_DIR / "control").mkdir(parents=True, exist_ok=True)

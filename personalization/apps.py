from __future__ import annotations

from django.apps import AppConfig


class PersonalizationConfig(AppConfig):
    name = "personalization"
    verbose_name = "Personalization data and model runs"

    def ready(self) -> None:
        from personalization import receivers  # noqa: F401 - connects the signal receivers

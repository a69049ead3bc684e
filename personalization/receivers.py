"""Keeps the cached stage configs (personalization.selectors.stage_config) in step with the database."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from personalization.models import Guideline, StudyStage
from personalization.selectors import stage_config_forget


@receiver([post_save, post_delete], sender=StudyStage)
@receiver([post_save, post_delete], sender=Guideline)
def stage_config_changed(sender: type, instance: StudyStage | Guideline, **kwargs: Any) -> None:
    # Forgotten now and again once the change is committed: a request that reads the database
    # before the commit would otherwise put the old values back in the cache.
    study_id = instance.study_id
    stage_config_forget(study_id=study_id)
    transaction.on_commit(lambda: stage_config_forget(study_id=study_id))

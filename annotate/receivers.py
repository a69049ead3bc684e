"""What the annotation layer does when something happens below it."""

from __future__ import annotations

import logging

from django.dispatch import receiver

from annotate.design import items_build
from personalization.models import ModelRun, Stage
from personalization.signals import model_run_finished

logger = logging.getLogger(__name__)


@receiver(model_run_finished, dispatch_uid="annotate.stage3_items_on_generation")
def stage3_items_on_generation(sender: type[ModelRun], run: ModelRun, **kwargs: object) -> None:
    """New generic and personalized responses become stage-3 work as soon as their run finishes,
    so annotators do not wait for a researcher to press "build items". items_build is idempotent."""
    if run.step != ModelRun.Step.GENERATE:
        return
    created = items_build(study=run.study, stage=Stage.PREFERENCE)
    logger.info("Run %s finished: %s new stage-3 item(s) for study %s", run.pk, created, run.study_id)

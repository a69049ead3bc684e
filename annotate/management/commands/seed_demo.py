"""`manage.py seed_demo`: the demo study, its accounts and data, then how to log in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from annotate.design import items_build, study_design_pairs
from annotate.models import Item
from personalization.demo import seed
from personalization.models import Attribute, Conversation, Prompt, Stage, Study, Subject, SubjectPrompt, Turn

DEFAULT_URL = "http://127.0.0.1:8000/"
# A fixed pairing seed makes every fresh demo pair the same subjects with the same prompts.
DEMO_PAIRING_SEED = 20240601


class Command(BaseCommand):
    help = (
        "Creates the demo study (subjects, conversations, attributes, prompts), a researcher and three "
        "annotator accounts with published demo passwords, and prints how to log in. Safe to run again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default=DEFAULT_URL, help=f"Address to print for logging in (default {DEFAULT_URL})"
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Seed even under production settings (the demo passwords are public: do not).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # The accounts' passwords are printed here and in the README: on a server others can reach
        # they would be open doors.
        # (SETTINGS_MODULE is None under override_settings, hence the `or "")`.)
        if (settings.SETTINGS_MODULE or "").endswith(".production") and not options["allow_production"]:
            raise CommandError(
                "seed_demo creates accounts with published passwords and refuses to run under production "
                "settings; pass --allow-production if you really mean it."
            )
        demo = seed.seed_demo(stdout=self.stdout)
        study = demo.study
        _prepare_work(study)
        url = options["url"].rstrip("/") + "/"
        subjects = Subject.objects.filter(study=study)
        counts = {
            "subjects": subjects.count(),
            "synthetic subjects": subjects.filter(is_synthetic=True).count(),
            "conversations": Conversation.objects.filter(subject__study=study).count(),
            "turns": Turn.objects.filter(conversation__subject__study=study).count(),
            "attributes (merged)": Attribute.objects.filter(subject__study=study, level=Attribute.Level.MERGED).count(),
            "attributes (original)": Attribute.objects.filter(
                subject__study=study, level=Attribute.Level.ORIGINAL
            ).count(),
            "prompts": Prompt.objects.filter(study=study).count(),
            "subject-prompt pairs": SubjectPrompt.objects.filter(subject__study=study).count(),
            **{f"stage {stage.value} items": Item.objects.filter(study=study, stage=stage).count() for stage in Stage},
        }
        lines = [
            "",
            f'Demo study "{study.name}" (id {study.pk}, {study.get_status_display().lower()}):',
            *(f"  {name:<22} {count}" for name, count in counts.items()),
            "",
            f"Open {url} and log in with one of these DEMO accounts (published passwords, demo use only):",
            f"  {seed.RESEARCHER_USERNAME:<12} / {seed.RESEARCHER_PASSWORD:<16} researcher: owns the study, "
            f"admin at {url}admin/",
        ]
        lines += [
            f"  {annotator.username:<12} / {seed.ANNOTATOR_PASSWORD:<16} annotator: member of the study"
            for annotator in demo.annotators
        ]
        lines.append("")
        self.stdout.write("\n".join(lines))


def _prepare_work(study: Study) -> None:
    """Pairs subjects with prompts and builds the items every stage can already serve, so the
    annotators have work as soon as they log in. Both services are idempotent; stage 3 items
    appear once generated responses exist (build them again after the generation runs)."""
    seed_value = study.pairing_seed if study.pairing_seed is not None else DEMO_PAIRING_SEED
    study_design_pairs(study=study, seed=seed_value)
    for stage in Stage:
        items_build(study=study, stage=stage)

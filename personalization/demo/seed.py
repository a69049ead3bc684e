"""The demo: a researcher, three annotators and a study built from the demo corpus.

The corpus in `data/` was written for Attune (no real person's data): nine subjects in WildChat
form, three synthetic personas in OpenAI chat form, pre-extracted attributes with evidence (a few of
them over-generalized on purpose, since that is what stage 1 is about) and everyday prompts. It is
loaded through the same importers a researcher uses, so the demo exercises the real code path.

The passwords below are published in the README and printed by `manage.py seed_demo`: demo
accounts only, never for a server others can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission, User
from django.db import transaction

from personalization.demo.guidelines import GUIDELINES_V1
from personalization.importers import (
    ImportReport,
    attributes_import,
    conversations_import,
    prompts_import,
)
from personalization.models import Guideline, Stage, Study, StudyStage

DATA_DIR = Path(__file__).resolve().parent / "data"
WILDCHAT_FILE = DATA_DIR / "conversations_wildchat.jsonl"
SYNTHETIC_FILE = DATA_DIR / "conversations_synthetic.jsonl"
ATTRIBUTES_FILE = DATA_DIR / "attributes.jsonl"
PROMPTS_FILE = DATA_DIR / "prompts.jsonl"

WILDCHAT_SOURCE = "wildchat-demo"
SYNTHETIC_SOURCE = "synthetic-personas"
PROMPT_SOURCE = "demo"

DEMO_STUDY_NAME = "Demo: everyday assistant conversations"
DEMO_STUDY_DESCRIPTION = (
    "A small demo of the three-stage study of LLM personalization, built from a corpus written for "
    "Attune: twelve people (nine in WildChat form, three synthetic personas) chatting with an assistant "
    "about cooking, travel, coding, fitness, parenting, job applications, gardening, budgeting and "
    "language learning, with attributes a model inferred about each of them. Stage 1 asks whether each "
    "attribute makes sense given the conversations (some are over-generalized on purpose); stage 2 "
    "whether an attribute would change the response to a new everyday request; stage 3 which of a "
    "generic and a personalized response serves the person better. Stages are not gated on each other "
    "here, so every stage has work as soon as its items are built."
)
JUDGMENTS_PER_ITEM = 3
LEASE_SECONDS = 15 * 60

RESEARCHERS_GROUP = "Researchers"
# Permissions are looked up by app label, not by importing judgments' models, so this bottom
# layer does not depend on a layer above it.
RESEARCHER_APPS = ("personalization", "judgments", "annotate")
RESEARCHER_ACTIONS = ("add", "change", "view", "delete")

RESEARCHER_USERNAME = "researcher"
RESEARCHER_PASSWORD = "researcher-demo"  # noqa: S105 - a published demo password, see the module docstring
ANNOTATOR_USERNAMES = ("annotator1", "annotator2", "annotator3")
ANNOTATOR_PASSWORD = "annotator-demo"  # noqa: S105 - a published demo password, see the module docstring


class Writer(Protocol):
    """Where progress goes: a text file, or a management command's stdout wrapper."""

    def write(self, msg: str, /) -> Any: ...


@dataclass(frozen=True)
class DemoSeed:
    study: Study
    researcher: User
    annotators: list[User]
    researchers_group: Group
    imports: list[ImportReport]


def seed_demo(*, stdout: Writer | None = None) -> DemoSeed:
    """Creates (or completes) the demo accounts, study and data; writes progress to `stdout`.

    Idempotent: a second run creates nothing and leaves the study's status, stages and guidelines
    as a researcher may have changed them, but it does reset the demo passwords so the printed
    logins always work. Runs in one transaction: a failed import leaves nothing half-seeded.
    """
    with transaction.atomic():
        group = researchers_group_ensure()
        researcher = _demo_user(RESEARCHER_USERNAME, RESEARCHER_PASSWORD, is_staff=True)
        researcher.groups.add(group)
        annotators = [_demo_user(name, ANNOTATOR_PASSWORD, is_staff=False) for name in ANNOTATOR_USERNAMES]
        study = _demo_study(researcher=researcher, annotators=annotators)
        imports = _import_corpus(study=study, stdout=stdout)
    return DemoSeed(study=study, researcher=researcher, annotators=annotators, researchers_group=group, imports=imports)


def researchers_group_ensure() -> Group:
    """The "Researchers" group with every add/change/view/delete permission of the research apps,
    so a staff researcher can work in the admin (which still limits rows to studies they own)."""
    for label in RESEARCHER_APPS:
        # Permissions are created after `migrate`; doing it here too makes the group complete even
        # on a database whose post-migrate step did not run for an app (e.g. one added later).
        create_permissions(apps.get_app_config(label), verbosity=0)
    group, _ = Group.objects.get_or_create(name=RESEARCHERS_GROUP)
    codenames = [
        codename
        for codename in Permission.objects.filter(content_type__app_label__in=RESEARCHER_APPS).values_list(
            "codename", flat=True
        )
        if codename.split("_", 1)[0] in RESEARCHER_ACTIONS
    ]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label__in=RESEARCHER_APPS, codename__in=codenames)
    )
    return group


def _demo_user(username: str, password: str, *, is_staff: bool) -> User:
    user, _ = User.objects.get_or_create(username=username)
    user.set_password(password)
    user.is_active = True
    user.is_staff = is_staff or user.is_staff
    user.save()
    return user


def _demo_study(*, researcher: User, annotators: list[User]) -> Study:
    # Looked up by name: the demo study is the one study this function owns.
    study = Study.objects.filter(name=DEMO_STUDY_NAME).order_by("id").first()
    if study is None:
        study = Study.objects.create(name=DEMO_STUDY_NAME, description=DEMO_STUDY_DESCRIPTION, status=Study.Status.OPEN)
    study.owners.add(researcher)
    study.annotators.add(*annotators)
    for stage in Stage:
        StudyStage.objects.get_or_create(
            study=study,
            stage=stage,
            defaults={
                "judgments_per_item": JUDGMENTS_PER_ITEM,
                "lease_seconds": LEASE_SECONDS,
                # The demo has no human judgments yet; ungated, every stage has work at once.
                "gate_on_previous_stage": False,
            },
        )
        # Only the first version: a researcher's later edits become new versions and are kept.
        if not Guideline.objects.filter(study=study, stage=stage).exists():
            Guideline.objects.create(
                study=study, stage=stage, version=1, text=GUIDELINES_V1[stage], created_by=researcher
            )
    return study


def _import_corpus(*, study: Study, stdout: Writer | None) -> list[ImportReport]:
    # Order matters: attributes cite conversations and turns, which must exist first.
    reports = [
        conversations_import(study=study, path=WILDCHAT_FILE, fmt="wildchat", source=WILDCHAT_SOURCE),
        conversations_import(
            study=study, path=SYNTHETIC_FILE, fmt="openai", source=SYNTHETIC_SOURCE, is_synthetic=True
        ),
        attributes_import(study=study, path=ATTRIBUTES_FILE),
        prompts_import(study=study, path=PROMPTS_FILE, source=PROMPT_SOURCE),
    ]
    if stdout is not None:
        for report in reports:
            stdout.write(report.summary() + "\n")
    return reports

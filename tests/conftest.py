"""Fixtures shared by every test area.

The cast follows the access rules: an owner (researcher) of the study, an annotator who is a
member, an outsider who is logged in but belongs to no study, and an anonymous client.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from personalization.models import Guideline, Stage, Study, StudyStage


@pytest.fixture(autouse=True)
def _empty_cache() -> None:
    """Every test starts with an empty cache: ids can repeat across tests (SQLite reuses them
    after a rollback), and a cached progress count, stage config or reclaim mark from an earlier
    test would leak into a later one."""
    cache.clear()


@pytest.fixture
def owner(db: None) -> User:
    return User.objects.create_user("owner", password="pw-owner-123", is_staff=True)


@pytest.fixture
def annotator(db: None) -> User:
    return User.objects.create_user("annotator", password="pw-annotator-123")


@pytest.fixture
def outsider(db: None) -> User:
    return User.objects.create_user("outsider", password="pw-outsider-123")


@pytest.fixture
def study(owner: User, annotator: User) -> Study:
    study = Study.objects.create(name="Test study", description="for tests", status=Study.Status.OPEN)
    study.owners.add(owner)
    study.annotators.add(annotator)
    for stage in Stage:
        StudyStage.objects.create(study=study, stage=stage, judgments_per_item=3)
        Guideline.objects.create(study=study, stage=stage, version=1, text=f"Guidelines for stage {stage.value}")
    return study


@pytest.fixture
def owner_client(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def annotator_client(annotator: User) -> Client:
    client = Client()
    client.force_login(annotator)
    return client


@pytest.fixture
def outsider_client(outsider: User) -> Client:
    client = Client()
    client.force_login(outsider)
    return client


@pytest.fixture
def anon_client() -> Client:
    return Client()

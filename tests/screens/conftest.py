from __future__ import annotations

import pytest

from personalization.models import Study
from tests.screens.builders import populate_study


@pytest.fixture
def populated(study: Study) -> Study:
    """The shared `study` fixture with subjects, prompts, responses and items of every stage."""
    populate_study(study)
    return study

"""Fixtures for the demo tests: the demo seeded once per test (it takes well under a second)."""

from __future__ import annotations

import pytest

from personalization.demo.seed import DemoSeed, seed_demo


@pytest.fixture
def demo(db: None) -> DemoSeed:
    return seed_demo()

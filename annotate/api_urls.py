"""Annotation API (next item, submit, skip, my judgments)."""

from __future__ import annotations

urlpatterns: list = []

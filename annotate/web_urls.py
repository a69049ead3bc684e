"""Annotator screens and the researcher dashboard."""

from __future__ import annotations

urlpatterns: list = []

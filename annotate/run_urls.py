"""Model run pages (start, cancel, resume, progress)."""

from __future__ import annotations

urlpatterns: list = []

"""Signals personalization sends to the layers above it.

The bottom layer cannot import annotate, yet a finished run is news up there (new responses
mean new stage-3 items). A signal lets the top layer listen without an upward import.
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent once per run, after the transaction that moved it to DONE has committed. kwargs: run.
model_run_finished = Signal()

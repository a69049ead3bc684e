"""Settings for the benchmarks: the test settings (fast hasher, no DEBUG query log) with the cache
every process of a real deployment shares, so per-process caches do not distort the figures."""

from __future__ import annotations

import tempfile

from annotate.settings.test import *  # noqa: F403

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": tempfile.mkdtemp(prefix="attune-bench-cache-"),
    }
}

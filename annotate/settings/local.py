"""Settings for `make run` on a researcher's own machine.

What this relaxes, on purpose: DEBUG is on, the secret key has a development default, and
cookies are not marked Secure because the server listens on plain http://127.0.0.1.
"""

from __future__ import annotations

from annotate.settings.base import *  # noqa: F403
from annotate.settings.env import env_bool, env_list, env_str

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "local-development-only-not-secret")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])

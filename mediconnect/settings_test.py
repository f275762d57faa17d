"""Settings of the test run (and of bench/ and docs/ scripts, which start daphne the same way).

The production settings, DEBUG off, with a key of the run's own and over plain HTTP, as the test
client and the live daphne processes speak it. The environment still wins; tests/live.py hands the
same key to the daphne processes it starts.
"""

import os
import secrets

os.environ.setdefault("SECRET_KEY", f"test-run-{secrets.token_urlsafe(48)}")
os.environ.setdefault("LOCAL_HTTP", "true")
# Static files from the apps, unhashed: no `collectstatic` before a test run (nor in the live servers).
os.environ.setdefault("STATICFILES_MANIFEST", "false")

from .settings import *  # noqa: E402, F403

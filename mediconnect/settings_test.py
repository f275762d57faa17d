"""Settings of the test run (and of bench/ and docs/ scripts, which start daphne the same way).

The production settings, DEBUG off, with a key of the run's own and over plain HTTP, as the test
client and the live daphne processes speak it. The environment still wins; tests/live.py hands the
same key to the daphne processes it starts.
"""

import base64
import os
import secrets
import tempfile

# A developer's `.env` (DEBUG, hosts, mail, time zone for `make run`) is not read: the suite asserts
# the defaults, and the same tests must pass on every machine. The environment still wins, so
# DATABASE_URL and REDIS_URL exported for a run keep working; ENV_FILE names a file on purpose.
os.environ.setdefault("ENV_FILE", "")
os.environ.setdefault("SECRET_KEY", f"test-run-{secrets.token_urlsafe(48)}")
os.environ.setdefault("LOCAL_HTTP", "true")
# Static files from the apps, unhashed: no `collectstatic` before a test run (nor in the live servers).
os.environ.setdefault("STATICFILES_MANIFEST", "false")
# Uploaded documents of the run (and of the live servers it starts) in a directory of its own, not the
# checkout's private-media/; the root conftest removes it at the end.
os.environ.setdefault("FILES_ROOT", os.path.join(tempfile.gettempdir(), f"mediconnect-test-files-{os.getpid()}"))

# Web Push: a VAPID key of the run's own (the raw 32-byte scalar, base64url), which the live servers and
# workers the tests start inherit through the environment, as they do SECRET_KEY.
os.environ.setdefault("VAPID_PRIVATE_KEY", base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode())
os.environ.setdefault("VAPID_SUBJECT", "mailto:push-tests@mediconnect.test")

from mediconnect.settings import *  # noqa: E402, F403

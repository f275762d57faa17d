"""An SMS backend for tests that run the task worker as a process of its own: what it sends is files.

Each send writes `started-<n>` in the folder TEST_SMS_DIR names, waits while a file `hold` is there
(a test kills the worker at that moment: mid-send, before the provider took the message), then
writes `sent-<n>` with the phone and the text."""

import os
import time
import uuid
from pathlib import Path

from notifications.sms import BaseSMSBackend


class FileSMSBackend(BaseSMSBackend):
    def send(self, phone: str, text: str) -> None:
        folder = Path(os.environ["TEST_SMS_DIR"])
        name = uuid.uuid4().hex
        (folder / f"started-{name}").write_text(f"{phone}\n{text}")
        while (folder / "hold").exists():  # the stand-in for a provider that has not answered yet
            time.sleep(0.05)
        (folder / f"sent-{name}").write_text(f"{phone}\n{text}")

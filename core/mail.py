"""The email backend of a server with no mail server configured (EMAIL_URL unset or consolemail://).

Django's console backend writes each whole message to the log, and a log is read by more people
than a mailbox: a password-reset link there lets its reader take the account over, and notification
mail carries names and appointment times. This one logs who a message is for and its subject only.
To read whole messages in development, point EMAIL_URL at a directory (filemail:////tmp/mediconnect-mail).
"""

import logging

from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger("mediconnect.mail")


class LogEmailBackend(BaseEmailBackend):
    """Sends nothing: logs each message's recipients and subject at INFO, never its body."""

    def send_messages(self, email_messages) -> int:
        for message in email_messages:
            logger.info("email to %s: %s (body not logged)", ", ".join(message.recipients()), message.subject)
        return len(email_messages)

import logging

from django.apps import AppConfig
from django.conf import settings


class NotificationsConfig(AppConfig):
    name = "notifications"

    def ready(self):
        from . import signals, webpush  # noqa: F401  (connects the post_save push and the revocation receiver)

        # Web Push's VAPID key: one that does not parse stops the process here, as a missing SECRET_KEY
        # does; none at all leaves Web Push off, said once at start (docs/push.md).
        if settings.VAPID_PRIVATE_KEY:
            webpush.vapid_key()
        elif not settings.DEBUG:
            logging.getLogger("notifications.webpush").warning(
                "Web Push is off: no VAPID_PRIVATE_KEY or VAPID_PRIVATE_KEY_FILE is set "
                "(GET /api/push/key/ answers 503 and no push is sent)."
            )

"""Django's own sign-out, wherever it happens (the portal's /logout/, the admin's), closes the user's sockets."""

from django.contrib.auth.signals import user_logged_out
from django.dispatch import receiver

from .services import user_logout


@receiver(user_logged_out, dispatch_uid="accounts_close_sockets_on_logout")
def _close_sockets_on_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        user_logout(user_id=user.pk)

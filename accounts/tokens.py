"""The API's tokens (simplejwt), on the API's floor: what the domain's sign-outs mean for them.

The services announce a revocation (accounts.signals) and never import the token library.
"""

from django.dispatch import receiver
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from .signals import credentials_revoked


@receiver(credentials_revoked, dispatch_uid="accounts_revoke_refresh_tokens")
def refresh_tokens_revoke(sender, user, **kwargs) -> None:
    """Blacklist every refresh token issued to the user that is not yet blacklisted (in the sender's transaction)."""
    outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
    BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )

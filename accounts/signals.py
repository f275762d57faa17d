"""What the accounts domain announces, for the floors above it to act on without the domain importing them."""

from django.dispatch import Signal

# A user's credentials issued before now must stop working (deactivation, a new password). Sent inside
# the change's transaction with `user`; accounts.tokens revokes the API's refresh tokens on it.
credentials_revoked = Signal()

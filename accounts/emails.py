"""One spelling of an email address for every path that stores or looks one up (sign-up, login, admin).

`email_normalise` is what is stored and matched at login: Unicode NFKC (compatibility forms such as
full-width letters become plain ones), then case-folded. `email_lookalike_key` also drops combining
marks, so that `patİent@test.com` (an i with a combining dot above once lower-cased) and
`patient@test.com` share a key: a second account whose address only looks the same is refused.
"""

import unicodedata


def email_normalise(email: str) -> str:
    """The address as stored and compared: stripped, NFKC, case-folded (NFKC again: folding can undo it)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", email.strip()).casefold())


def email_lookalike_key(email: str) -> str:
    """The normalised address without combining marks: equal for addresses a reader cannot tell apart."""
    decomposed = unicodedata.normalize("NFKD", email_normalise(email))
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))

"""The documents' own refusals, beside core.errors: the API answers them 413 and 415."""

from core.errors import InvalidInput


class TooLarge(InvalidInput):
    """The file is larger than FILE_MAX_BYTES."""


class UnsupportedFile(InvalidInput):
    """The bytes are not a type we accept, or carry active content."""

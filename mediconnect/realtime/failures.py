"""Logging an unexpected error in the socket tier without its text."""

import logging
import traceback


def log_failure(log: logging.Logger, what: str, exc: BaseException) -> None:
    """Log an unexpected error with its stack but not its text, which may quote a patient's data."""
    stack = "".join(traceback.format_tb(exc.__traceback__))
    log.error("%s failed: %s (message withheld)\n%s", what, type(exc).__name__, stack)

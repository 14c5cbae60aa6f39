"""Errors that are the user's to fix: the CLI prints them as one line, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (file, column, config key). Exit code 1 by default."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class UsageError(UserError):
    """Wrong command-line usage (missing file argument, bad flag value). Exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)

"""Errors the CLI turns into exit code 2 and one line on stderr."""

from __future__ import annotations


class InputError(ValueError):
    """Bad usage or bad input: the message is shown to the user as one line (exit code 2)."""


class OutputExistsError(InputError):
    """The output path already holds a complete result and ``--overwrite`` was not given."""

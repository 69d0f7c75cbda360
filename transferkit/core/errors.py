"""User-facing errors.

Anything the user can fix (a bad file, an unknown name, a wrong option) raises
:class:`UserError`.  The CLI prints its message on one line and exits with code 2;
a real bug is left to raise normally so it shows a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class UserError(Exception):
    """A mistake in the user's input: printed as one line, exit code 2."""

    exit_code = 2


def closest(name: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the nearest choice, or ``""``."""
    match = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> UserError:
    """Error for an unknown registry/catalog name that lists the valid ones."""
    valid = sorted(choices)
    return UserError(f"unknown {kind} '{name}'{closest(name, valid)}; valid: {', '.join(valid)}")

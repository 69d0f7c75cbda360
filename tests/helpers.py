"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import pytest

from transferkit.core.errors import UserError


def one_line_error(call, *fragments: str) -> str:
    """Call ``call``; assert it raises a one-line UserError containing every fragment; return the message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message

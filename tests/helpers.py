"""Assertion helpers shared by the test modules."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from transferkit.core.errors import UserError


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch on one thread inside the block (tiny matrices: more threads only add overhead), restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def one_line_error(call, *fragments: str) -> str:
    """Call ``call``; assert it raises a one-line UserError containing every fragment; return the message."""
    with pytest.raises(UserError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def run_cli(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    """Run ``transferkit ARGS`` in-process; returns (exit code, stdout, stderr); 0 when it didn't exit."""
    from transferkit.cli.main import main

    monkeypatch.setattr(sys, "argv", ["transferkit", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err

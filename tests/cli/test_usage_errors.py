"""Usage mistakes (an unknown option, a missing argument, a mistyped command): the usage line, the one-line
reason and exit code 2, never a traceback, for every command."""

from __future__ import annotations

import pytest
import typer

from tests.helpers import run_cli
from transferkit.cli.main import app

COMMANDS = typer.main.get_command(app).commands  # name -> the command Click parses


def required(name: str) -> list[str]:
    """The command's required parameters (arguments and options), as Click names them."""
    return [param.name for param in COMMANDS[name].params if param.required]


def assert_usage_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err and "Usage: " in err and "--help" in err, err
    for needle in needles:
        assert needle in err, (needle, err)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_an_unknown_option_is_a_usage_error(command: str, capsys, monkeypatch) -> None:
    code, _, err = run_cli([command, "--no-such-option", "1"], capsys, monkeypatch)
    assert_usage_error(code, err, "No such option: --no-such-option")


@pytest.mark.parametrize("command", sorted(name for name in COMMANDS if required(name)))
def test_a_missing_argument_is_a_usage_error(command: str, capsys, monkeypatch) -> None:
    code, _, err = run_cli([command], capsys, monkeypatch)
    assert_usage_error(code, err, "Missing")


def test_a_mistyped_command_suggests_the_closest(capsys, monkeypatch) -> None:
    code, _, err = run_cli(["evalute"], capsys, monkeypatch)
    assert_usage_error(code, err, "No such command 'evalute'", "Did you mean 'evaluate'?")


@pytest.mark.parametrize("args", [["train", "--epochs", "2"], ["evaluate", "runs/x", "--data", "dev.tsv", "--output", "x"]])
def test_the_options_users_try_name_themselves(args: list[str], capsys, monkeypatch) -> None:
    code, _, err = run_cli(args, capsys, monkeypatch)
    assert_usage_error(code, err, f"No such option: {args[-2]}")

"""House rules that keep the code base readable: the layer contract and the file-size budget."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_layers_only_import_downwards() -> None:
    beside_python = Path(sys.executable).parent / "lint-imports"  # the venv's, even when it is not on PATH
    executable = str(beside_python) if beside_python.exists() else shutil.which("lint-imports")
    if executable is None:
        pytest.fail("import-linter is not installed (pip install -e '.[dev]')")
    result = subprocess.run([executable], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_source_files_stay_under_400_lines() -> None:
    sizes = {p.relative_to(ROOT): sum(1 for _ in p.open()) for p in (ROOT / "transferkit").rglob("*.py")}
    too_big = {str(p): n for p, n in sizes.items() if n > 400}
    assert not too_big, too_big


# ---- the wiring knows no kind of strategy ----------------------------------------------------------------------
WIRING = ("experiments", "serving", "cli")
"""Packages that drive strategies and may use only their declared protocol (``strategies.base.PROTOCOL``)."""
DELTA_HOOKS = {"prepare", "merge"}
"""``DeltaStrategy``'s hooks: serving rebuilds and folds a saved delta model with them."""
ALLOWED_STRATEGY_IMPORTS = {"transferkit.strategies", "transferkit.strategies.base",
                            "transferkit.strategies.tfidf"}  # tfidf's predictor class loads a saved tfidf model
METHOD_WORDS = {"distillation", "pretraining", "frozen", "multitask", "adapter", "alignment", "fewshot", "teacher"}


def _wiring_modules() -> list[Path]:
    return [p for package in WIRING for p in (ROOT / "transferkit" / package).rglob("*.py")]


def _names_a_strategy(node: ast.AST) -> bool:
    """``strategy``, ``parts.strategy``, ``strategy_cls``, ``self.strategy``, ``STRATEGIES.get(...)`` ..."""
    if isinstance(node, ast.Name):
        return "strateg" in node.id.lower() and node.id != "STRATEGIES"
    if isinstance(node, ast.Attribute):
        return "strateg" in node.attr.lower()
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return isinstance(node.func.value, ast.Name) and node.func.value.id == "STRATEGIES" and node.func.attr == "get"
    return False


def _wiring_problem(node: ast.AST, serving: bool, protocol: frozenset[str]) -> str | None:
    """What ``node`` breaks, if anything: a strategy attribute outside the protocol, a getattr/hasattr probe of a
    strategy, an import of a method's own module."""
    if isinstance(node, ast.Attribute) and _names_a_strategy(node.value):
        if node.attr not in protocol | (DELTA_HOOKS if serving else set()):
            return f"reads strategy attribute '{node.attr}'"
    elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr"):
        if node.args and _names_a_strategy(node.args[0]):
            return f"probes a strategy with {node.func.id}"
    elif (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("transferkit.strategies")
          and node.module not in ALLOWED_STRATEGY_IMPORTS):
        return f"imports {node.module} (a method's own module)"
    return None


def test_the_wiring_reads_only_the_strategy_protocol() -> None:
    """experiments/, serving/ and cli/ read no strategy attribute outside ``PROTOCOL`` (so a branch on a strategy's
    kind or flags cannot hide there), probe none with getattr/hasattr, and import no method's module."""
    from transferkit.strategies.base import PROTOCOL

    problems = []
    for path in _wiring_modules():
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            problem = _wiring_problem(node, where.parts[1] == "serving", PROTOCOL)
            if problem:
                problems.append(f"{where}:{getattr(node, 'lineno', 0)}: {problem}")
    assert not problems, "\n".join(problems)


def test_the_detector_sees_a_strategy_flag(tmp_path: Path) -> None:
    """The rule above fails on the kind of branch it forbids (so it is not vacuous)."""
    from transferkit.strategies.base import PROTOCOL

    code = "if parts.strategy.kind == 'frozen':\n    strategy.fit_head(model)\n"
    reads = [n.attr for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Attribute) and _names_a_strategy(n.value)]
    assert set(reads) - PROTOCOL == {"kind", "fit_head"}


def test_experiments_has_no_module_named_after_a_method() -> None:
    from transferkit.strategies import STRATEGIES

    method_modules = {p.stem for p in (ROOT / "transferkit" / "strategies").iterdir() if p.stem not in ("__init__",)}
    words = METHOD_WORDS | set(STRATEGIES.names()) | (method_modules - {"base", "common", "neural", "__pycache__"})
    named = [p.name for p in (ROOT / "transferkit" / "experiments").glob("*.py") if any(w in p.stem for w in words)]
    assert not named, named

"""Every chapter's exercises: a stub in the book, a folded solution that passes its checker.

A saved book must never print "correct" for an exercise nobody did. So the exercise cell of every
chapter holds a stub whose body is ``raise NotImplementedError`` followed by its ``check_...`` call,
and the reference solution sits in a folded ``<details><summary>Solution</summary>`` block (a
```python fence in the Markdown cell after it). These tests read the chapter sources in
notebooks/src, execute each folded solution and run the checker of course_utils.exercises named in
SOLUTIONS on it (it must return True), execute each stub the same way (the checker must return False
and print no "correct"), and fail when a chapter has a stub, a solution or a table row without the
other two.
"""

from __future__ import annotations

import ast
import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_utils import exercises, judge

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "notebooks" / "src"
CHAPTERS = sorted(SRC.glob("[0-9][0-9]_*.py"))
sys.path.insert(0, str(ROOT / "tools"))
import notebooks as nbtool  # noqa: E402

# chapter number -> {function the learner writes: its checker in course_utils.exercises}. A chapter
# that is not listed must have no exercise stub and no folded solution.
SOLUTIONS: dict[str, dict[str, str]] = {
    "01": {"nll_one_position": "check_nll_one_position", "perplexity_and_ratio": "check_perplexity"},
    "02": {"sft_mask": "check_sft_mask", "masked_mean": "check_masked_mean"},
    "03": {"bt_loss_one_pair": "check_bt_loss", "bt_gradient_one_pair": "check_bt_gradient",
           "orient_by_majority": "check_majority_orientation"},
    "04": {"my_elo_update": "check_elo_update", "points_for_odds": "check_points_for_odds",
           "my_log_likelihood": "check_log_likelihood"},
    "05": {"gae_one_sequence": "check_gae_one_sequence", "clipped_objective": "check_clipped_objective",
           "kl_optimum": "check_kl_optimum"},
    "06": {"effectiveness": "check_effectiveness", "conservative_bt": "check_conservative_bt",
           "gao_fit": "check_gao_fit"},
    "07": {"my_overall": "check_overall_score", "my_gaps": "check_gap_to_target", "my_winner": "check_battle_winner"},
    "08": {"dpo_margin_and_loss": "check_dpo_margin", "my_group_advantages": "check_group_advantages",
           "best_of_n_mean": "check_best_of_n_mean"},
}

# What the chapters import at the top, which the folded solutions and the stubs' annotations may use.
CHAPTER_GLOBALS = {"np": np, "pd": pd, "math": math, "judge": judge}

_DETAILS = re.compile(r"<details><summary>Solution</summary>(.*?)</details>", re.S)
_FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _number(path: Path) -> str:
    return path.name[:2]


def _cells(path: Path) -> list[dict]:
    return nbtool.parse_source(path.read_text(encoding="utf-8"))


def solution_blocks(path: Path) -> list[str]:
    """The python code of every folded solution block of a chapter."""
    return [code for cell in _cells(path) if cell["cell_type"] == "markdown"
            for block in _DETAILS.findall(cell["source"]) for code in _FENCE.findall(block)]


def _is_stub(fn: ast.FunctionDef) -> bool:
    """A function whose body is an optional docstring and ``raise NotImplementedError``."""
    body = fn.body[1:] if (fn.body and isinstance(fn.body[0], ast.Expr)
                           and isinstance(fn.body[0].value, ast.Constant)) else fn.body
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc.func if isinstance(body[0].exc, ast.Call) else body[0].exc
    return isinstance(exc, ast.Name) and exc.id == "NotImplementedError"


def _check_calls(tree: ast.Module) -> dict[str, str]:
    """{function name: checker name} for every ``check_...(name)`` call in a cell."""
    return {node.args[0].id: node.func.id for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("check_")
            and node.args and isinstance(node.args[0], ast.Name)}


def _functions(path: Path) -> list[tuple[ast.FunctionDef, str | None]]:
    """(definition, name of the checker the same cell calls on it, or None) of every function that a
    code cell defines and checks, or that is a stub."""
    found = []
    for cell in _cells(path):
        if cell["cell_type"] != "code" or not ("check_" in cell["source"] or "NotImplementedError" in cell["source"]):
            continue
        tree = ast.parse(cell["source"])
        calls = _check_calls(tree)
        found += [(node, calls.get(node.name)) for node in tree.body
                  if isinstance(node, ast.FunctionDef) and (node.name in calls or _is_stub(node))]
    return found


def solved_in_the_cell(path: Path) -> list[str]:
    """The functions that a code cell defines with a real body and runs through a ``check_...`` call."""
    return [fn.name for fn, checker in _functions(path) if checker and not _is_stub(fn)]


def stubs(path: Path) -> dict[str, tuple[ast.FunctionDef, str | None]]:
    """{name: (definition, checker the cell calls on it)} of every exercise stub of a chapter."""
    return {fn.name: (fn, checker) for fn, checker in _functions(path) if _is_stub(fn)}


def _defined(code: str) -> list[str]:
    return [node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)]


def solution(path: Path, name: str):
    """The function ``name`` as defined by the chapter's folded solution."""
    blocks = [code for code in solution_blocks(path) if name in _defined(code)]
    assert len(blocks) == 1, f"{path.name}: {len(blocks)} folded solutions define {name}"
    namespace = dict(CHAPTER_GLOBALS)
    exec(compile(blocks[0], f"{path.name}:solution:{name}", "exec"), namespace)
    return namespace[name]


def stub(path: Path, name: str):
    """The function ``name`` as the chapter's exercise cell defines it (the stub alone, not the check)."""
    found = stubs(path)
    assert name in found, f"{path.name}: no exercise stub defines {name}"
    fn, _ = found[name]
    namespace = dict(CHAPTER_GLOBALS)
    exec(compile(ast.Module(body=[fn], type_ignores=[]), f"{path.name}:stub:{name}", "exec"), namespace)
    return namespace[name]


TABLE = [(path, name, checker) for path in CHAPTERS for name, checker in SOLUTIONS.get(_number(path), {}).items()]
TABLE_IDS = [f"{path.name[:2]}-{name}" for path, name, _ in TABLE]


def test_every_table_row_names_a_chapter_and_a_checker():
    assert {_number(p) for p in CHAPTERS} >= set(SOLUTIONS)
    for rows in SOLUTIONS.values():
        for checker in rows.values():
            assert callable(getattr(exercises, checker, None)), f"course_utils.exercises has no {checker}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_each_stub_has_a_folded_solution_and_a_table_row(path):
    expected = SOLUTIONS.get(_number(path), {})
    found = stubs(path)
    solved = {name for code in solution_blocks(path) for name in _defined(code)}
    assert not set(found) - set(expected), f"{path.name}: stub(s) with no tested solution: {set(found) - set(expected)}"
    assert not set(expected) - set(found), f"{path.name}: no exercise stub for {set(expected) - set(found)}"
    assert not set(expected) - solved, f"{path.name}: no folded solution for {set(expected) - solved}"
    for code in solution_blocks(path):
        assert set(_defined(code)) & set(expected), f"{path.name}: a folded solution nobody tests:\n{code}"
    for name, (_, checker) in found.items():      # the stub's own cell runs the checker the table names
        assert checker == expected[name], f"{path.name}: the cell of {name} calls {checker}, the table {expected[name]}"


@pytest.mark.parametrize("path,name,checker", TABLE, ids=TABLE_IDS)
def test_folded_solution_passes_its_checker(path, name, checker, capsys):
    assert getattr(exercises, checker)(solution(path, name)) is True
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("path,name,checker", TABLE, ids=TABLE_IDS)
def test_stub_is_reported_as_not_attempted(path, name, checker, capsys):
    assert getattr(exercises, checker)(stub(path, name)) is False
    out = capsys.readouterr().out
    assert "not implemented yet" in out and "correct" not in out


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_no_exercise_cell_checks_a_solved_function(path):
    """A function defined in the same cell as its ``check_...`` call must be a stub."""
    solved = solved_in_the_cell(path)
    assert not solved, f"{path.name}: the exercise cell runs a solution through its checker: {solved}"

"""The flows, gates and DAG factory are written once against the ports: no channel's name appears
in their code (identifiers, attribute names, string literals). Docstrings and comments may name a
vendor as an example; a branch on one would have to name it in code, which this catches."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "plugins" / "commerce_sync"
SHARED = sorted([*(PKG / "flows").glob("*.py"), *(PKG / "gates").glob("*.py"), PKG / "factory.py"])
CHANNELS = ("marketplacer", "mirakl", "john_lewis", "john lewis", "johnlewis", "salesforce", "sfcc", "demandware", "commercetools", "centra")


def code_words(source: str) -> list[str]:
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    words: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.append(node.id)
        elif isinstance(node, ast.Attribute):
            words.append(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            words.append(node.name)
        elif isinstance(node, ast.arg):
            words.append(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append(node.value)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            words += [a.name for a in node.names] + ([node.module] if getattr(node, "module", None) else [])
    return words


def test_the_check_sees_a_branch_on_a_channel():
    assert any("mirakl" in w.lower() for w in code_words("if pairing.channel.system == 'mirakl':\n    pass\n"))
    assert not code_words('"""Mirakl: OR21 is an example here."""\n')


@pytest.mark.parametrize("path", SHARED, ids=lambda p: p.relative_to(PKG).as_posix())
def test_shared_code_names_no_channel(path):
    hits = [w for w in code_words(path.read_text()) if any(c in w.lower() for c in CHANNELS)]
    assert not hits, f"{path.name} names a channel in code: {hits}"

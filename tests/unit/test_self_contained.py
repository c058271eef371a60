"""Nothing in the product, its tests, benchmarks or scripts reads outside the checkout.

A newcomer's clone has nothing beside it: a path that climbs out of the repository (a folder
beside it, this workspace's own root) works here and fails there. Cheap static checks: Python
paths built from __file__ must stay inside the repository, no path built from a string climbs
with '..', and no file names this workspace's root; scripts may climb from their own folder only
as far as the repository's root.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("plugins", "dags", "sandbox", "tests", "bench", "scripts", ".ci")
FILES = ("Makefile", "pytest.ini", "docker-compose.yaml", "airflow_settings.yaml", "requirements.in", "requirements.txt")
TEXT_SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".ini", ".cfg", ".toml", ".txt", ".in", ".sql", ".graphql", ".json", ""}
# this workspace's root and the folder beside the checkout that only this workspace has
WORKSPACE = re.compile("/" + "work/|" + r"\.\./" + "shared")
PATH_CALLS = {"Path", "PurePath", "PosixPath", "open", "join", "joinpath", "chdir", "listdir", "scandir", "glob", "exists", "isdir", "isfile"}


def scanned() -> list[Path]:
    files = [ROOT / name for name in FILES if (ROOT / name).exists()]
    for folder in FOLDERS:
        files += [
            p for p in sorted((ROOT / folder).rglob("*"))
            if p.is_file() and p.suffix in TEXT_SUFFIXES and "__pycache__" not in p.parts and p.resolve() != Path(__file__).resolve()
        ]
    return files


def _inside(path: Path) -> bool:
    return path == ROOT or ROOT in path.parents


def _levels(node: ast.AST) -> int | None:
    """How many folders up from its own file an expression built on __file__ points (the file
    itself is 0), or None when it is not such an expression."""
    if isinstance(node, ast.Name) and node.id == "__file__":
        return 0
    if isinstance(node, ast.Attribute) and node.attr == "parent":
        inner = _levels(node.value)
        return None if inner is None else inner + 1
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "parents":
        inner = _levels(node.value.value)
        if inner is not None and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, int):
            return inner + node.slice.value + 1
        return None
    if isinstance(node, ast.Call):
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in {"Path", "PurePath", "abspath", "realpath", "normpath"} and node.args:
            return _levels(node.args[0])
        if name in {"resolve", "absolute"} and isinstance(func, ast.Attribute):
            return _levels(func.value)
        if name == "dirname" and node.args:
            inner = _levels(node.args[0])
            return None if inner is None else inner + 1
    return None


def _climbs(value: str) -> bool:
    return ".." in re.split(r"[/\\]", value)


def python_problems(text: str, path: Path) -> list[str]:
    """Escapes in Python source `text` of the file at `path`."""
    tree = ast.parse(text, filename=str(path))
    problems = []
    for node in ast.walk(tree):
        levels = _levels(node)
        if levels:
            target = path.resolve().parents[levels - 1]
            if not _inside(target):
                problems.append(f"line {node.lineno}: {ast.unparse(node)} is {target}, outside the checkout")
        # a string climbing with '..' where a path is built: Path("../x"), open("../x"), base / "../x"
        strings: list[ast.AST] = []
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in PATH_CALLS:
                strings = list(node.args)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            strings = [node.left, node.right]
        for s in strings:
            if isinstance(s, ast.Constant) and isinstance(s.value, str) and _climbs(s.value):
                problems.append(f"line {s.lineno}: path {s.value!r} climbs out with '..'")
    return problems


def script_problems(text: str, path: Path) -> list[str]:
    """Shell and make: climbing from the script's own folder is fine up to the repository's root."""
    depth = len(path.resolve().relative_to(ROOT).parts) - 1
    problems = []
    for m in re.finditer(r'\$\(dirname "?\$(?:0|\{BASH_SOURCE\[0\]\})"?\)((?:/\.\.)+)', text):
        if m.group(1).count("..") > depth:
            problems.append(f"{m.group(0)} climbs above the repository")
    rest = re.sub(r'\$\(dirname "?\$(?:0|\{BASH_SOURCE\[0\]\})"?\)(?:/\.\.)+', "", text)
    for m in re.finditer(r"(?:^|[\s\"'=:(])\.\./|\$\(CURDIR\)/\.\.|\$\{?ROOT\}?/\.\.", rest, re.MULTILINE):
        line = rest.count("\n", 0, m.start()) + 1
        problems.append(f"line {line}: {m.group(0).strip()!r} climbs out of the checkout")
    return problems


def test_nothing_reads_outside_the_checkout():
    problems = []
    for path in scanned():
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8", errors="replace")
        problems += [f"{rel}: names {m.group(0)!r}, which a clone elsewhere does not have" for m in WORKSPACE.finditer(text)]
        if path.suffix == ".py":
            problems += [f"{rel} {p}" for p in python_problems(text, path)]
        elif path.suffix in {".sh", ""} or path.name == "Makefile":
            problems += [f"{rel}: {p}" for p in script_problems(text, path)]
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_name():
    """No check that cannot fail: each kind of escape is caught, what stays inside is not."""
    here = ROOT / "tests" / "unit" / "example.py"  # checked as if it lived here; never written
    sources = {
        "Path(__file__).resolve().parents[3] / 'shared'": 1,
        "Path(__file__).parent.parent.parent.parent": 1,
        "os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))": 1,
        "Path('../shared/specs')": 1,
        "ROOT / '../elsewhere'": 1,
        "Path(__file__).resolve().parents[2] / 'specs'": 0,
        "Path(__file__).with_name('x')": 0,
        "slip_filename('../data')": 0,  # data, not a path
    }
    for source, expected in sources.items():
        found = python_problems(f"import os\nfrom pathlib import Path\nx = {source}\n", here)
        assert len(found) == expected, (source, found)
    script = ROOT / "scripts" / "example.sh"
    for text, expected in {'cd "$(dirname "$0")/.."': 0, 'cd "$(dirname "$0")/../.."': 1, "cat ../shared/x": 1, "X=$(CURDIR)/../y": 1}.items():
        assert len(script_problems(text + "\n", script)) == expected, text
    assert WORKSPACE.search("spec = '/" + "work/shared/x.json'") and not WORKSPACE.search("/tmp/x")

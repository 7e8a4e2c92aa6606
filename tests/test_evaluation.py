"""matte_sdk.evaluation as one package: one-way imports, optional SciPy and matplotlib, no old homes left."""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "matte_sdk"
OURS = ("matte_sdk.evaluation", "matte_sdk.commands.eval")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def top_level_imports(path: Path, modules: set[str]) -> set[str]:
    """The matte_sdk modules ``path`` imports when it is imported (``if`` blocks such as TYPE_CHECKING
    included, function bodies not); a parent package is not an edge, since it is initialised first."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def visit(nodes):
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names)
            elif isinstance(node, (ast.If, ast.Try)):
                visit(node.body + node.orelse + getattr(node, "finalbody", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text()).body)
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def strongconnect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in graph:
        if v not in index:
            strongconnect(v)
    return found


def test_the_evaluation_modules_are_in_no_import_cycle():
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): top_level_imports(p, modules) for p in paths}
    assert graph["matte_sdk.evaluation.report"] >= {"matte_sdk.evaluation.scoring", "matte_sdk.evaluation.metrics"}
    assert "matte_sdk.evaluation.report" in graph["matte_sdk.commands.eval"]
    ours = [c for c in cycles(graph) if any(m.startswith(OURS) for m in c)]
    assert ours == []


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]


def test_importing_the_package_and_the_command_loads_neither_scipy_nor_matplotlib():
    code = (
        "import sys, matte_sdk, matte_sdk.cli, matte_sdk.commands.eval, matte_sdk.evaluation.report, "
        "matte_sdk.evaluation.benchmark; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('scipy', 'matplotlib')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def project_files(suffixes: tuple[str, ...]) -> list[Path]:
    """The project's own files (hidden folders such as .venv and .cache, and runs/, left out)."""
    found = []
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d != "runs" and not d.endswith(".egg-info")]
        found += [Path(folder) / n for n in names if n.endswith(suffixes)]
    return found


def test_nothing_imports_or_documents_the_old_homes_of_metrics_and_reports():
    assert not (PACKAGE / "metrics.py").exists() and not (PACKAGE / "report.py").exists()
    gone = {"matte_sdk.metrics", "matte_sdk.report"}
    importers = []
    for path in project_files((".py",)):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            else:
                continue
            importers += [str(path.relative_to(ROOT))] if names & gone else []
    assert importers == []
    old = re.compile(r"matte_sdk[./](metrics|report)\b|from matte_sdk import (metrics|report)\b")
    documents = [p for p in project_files((".md",)) if p.name != "CHANGELOG.md"]  # it names what moved where
    assert ROOT / "README.md" in documents
    assert [str(p.relative_to(ROOT)) for p in documents if old.search(p.read_text())] == []


def test_benchmark_and_training_import_evaluation_instead_of_running_scripts():
    users = [ROOT / "benchmarks" / "quality.py", ROOT / "training" / "evaluate.py", ROOT / "training" / "heldout.py"]
    for path in users:
        imported = {m for m in top_level_imports(path, {"runpy", "matte_sdk.evaluation"}) if m}
        assert imported == {"matte_sdk.evaluation"}, path

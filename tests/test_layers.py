"""The house rules of docs/architecture.md, checked on the source: who may import whom, and no circles.

Every `import` counts, at module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from patchtst_hpo.paths import REPO_DIR

# Lower layers never import higher ones; a layer may import itself (models/patchtst -> models/arch_grid).
LAYERS = [
    ("bottom", ["paths", "errors", "atomic", "metric_names", "trust"]),
    ("shared", ["home", "metrics"]),
    ("models, data", ["models", "data"]),
    ("config, devices", ["config", "schemas", "messages", "devices", "shared_store", "threads"]),
    ("hpo", ["hpo"]),
    ("analysis", ["analysis"]),
    (
        "validation, cli, run building",
        ["validation", "cli", "build", "run_record", "ranks", "progress", "checkpointing"],
    ),
    ("entry points", ["train", "report", "bench", "candidates", "data.__main__", "hydra_plugins"]),
]


def _layer(module: str) -> int:
    name = module.removeprefix("patchtst_hpo.")
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if name == p or name.startswith(p + ".") or module.startswith(p + "."):
                best = rank  # the last (highest) match wins: data.__main__ is an entry point
    assert best is not None, f"{module}: add it to a layer in tests/test_layers.py and docs/architecture.md"
    return best


def _modules() -> dict[str, set[str]]:
    """module -> the patchtst_hpo modules it imports."""
    graph = {}
    for path in [*(REPO_DIR / "patchtst_hpo").rglob("*.py"), *(REPO_DIR / "hydra_plugins").rglob("*.py")]:
        rel = path.relative_to(REPO_DIR).with_suffix("")
        module = ".".join(p for p in rel.parts if p != "__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("patchtst_hpo"):
                # `from patchtst_hpo import config` imports patchtst_hpo.config
                deps |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in _ALL}
                deps |= {node.module} - {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("patchtst_hpo")}
        graph[module] = {d for d in deps if d in _ALL and d != module}
    return graph


_ALL = {
    ".".join(p for p in path.relative_to(REPO_DIR).with_suffix("").parts if p != "__init__")
    for d in ("patchtst_hpo", "hydra_plugins")
    for path in (REPO_DIR / d).rglob("*.py")
}
GRAPH = _modules()


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_module_imports_a_higher_layer(module):
    if module in ("patchtst_hpo", "patchtst_hpo.data", "patchtst_hpo.models", "patchtst_hpo.hpo"):
        return  # empty package markers
    up = {d for d in GRAPH[module] if d not in ("patchtst_hpo",) and _layer(d) > _layer(module)}
    assert not up, f"{module} ({LAYERS[_layer(module)][0]}) imports a higher layer: {sorted(up)}"


def test_no_import_circles():
    def visit(m: str, stack: list[str]) -> None:
        for d in GRAPH.get(m, ()):
            assert d not in stack, "import circle: " + " -> ".join([*stack[stack.index(d) :], d])
            visit(d, [*stack, d])

    for m in GRAPH:
        visit(m, [m])


@pytest.mark.parametrize(
    "module",
    [
        "patchtst_hpo.config",
        "patchtst_hpo.candidates",
        "patchtst_hpo.data.__main__",
        "patchtst_hpo.home",
        "patchtst_hpo.validation",
    ],
)
def test_config_and_data_clis_do_not_import_torch(module):
    """`--help`, config errors and `patchtst-data` stay fast: no torch or Lightning behind them."""
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_DIR, timeout=300
    )
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr

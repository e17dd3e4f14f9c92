"""The package's layout: every module imports only modules of earlier stages of the pipe (no cycles),
and every document the code or the README cites is in the repository."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simulator"

# The stages of the pipe, in order; a module may import from its own row's predecessors only.
STAGES = [
    "_version", "codes", "units", "config", "files", "lock", "memory", "rng", "products", "hazard", "tail", "risk", "provisions", "terms",
    "population", "scoring", "book", "policy", "origination", "kernel", "faults", "checkpoints", "pnl", "results", "tape",
    "calibration",
    "engine", "backtesting", "scorecard_fit", "takeup_fit", "readback",
    "metrics", "summary", "figures", "pages", "quotes", "__init__", "cli", "__main__",
]
OUTPUT_SIDE = ["pnl", "results", "metrics", "summary", "figures", "pages"]
DOMAIN = STAGES[:STAGES.index("engine") + 1]
COMMANDS = ["quotes", "cli", "__main__"]


def imports(module: str) -> set[str]:
    """The package modules `module` imports, at the top or inside functions."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:   # `from . import x`
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "simulator":
            parts = node.module.split(".")
            found.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "simulator":
                    found.add("__init__")
                elif alias.name.startswith("simulator."):
                    found.add(alias.name.split(".")[1])
    return found - {module}


def test_every_module_has_a_stage():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(STAGES), f"add new modules to STAGES: {sorted(modules ^ set(STAGES))}"


def test_modules_import_only_earlier_stages():
    for module in STAGES:
        later = [name for name in imports(module) if name in STAGES and STAGES.index(name) > STAGES.index(module)]
        assert not later, f"simulator/{module}.py imports later stages {later}"


def test_output_side_and_domain_boundaries():
    for module in OUTPUT_SIDE:
        assert "policy" not in imports(module), f"{module} (output side) imports policy"
    for module in DOMAIN:
        assert not imports(module) & set(COMMANDS), f"{module} imports a command's module"


def test_cited_documents_exist():
    texts = [p.read_text() for p in [*PACKAGE.glob("*.py"), PACKAGE / "defaults.toml", ROOT / "README.md"]]
    cited = {m for text in texts for m in re.findall(r"(?:docs|benchmarks)/[\w/.-]+\.md", text)}
    assert cited, "no document cited at all: the pattern is wrong"
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited but not in the repository: {missing}"

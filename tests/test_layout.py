"""The package's layout: wings by role, every module importing only modules before it in the pipe (no
cycles), each wing's own rule, and every document the code or the README cites in the repository."""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "simulator"

# The package in wings by role, in the order of the pipe (docs/architecture.md section 2). A module
# imports the vocabulary, modules of earlier wings, and modules listed before it in its own wing;
# nothing imports the face but the face.
VOCABULARY = ["_version", "codes", "units"]
WINGS = {
    "config": ["schema", "loader", "files"],
    "model": ["rng", "memory", "products", "hazard", "prepayment", "tail", "risk", "provisions", "terms", "population", "scoring",
              "book", "policy", "origination", "kernel", "quotes"],
    "results": ["variables", "joint_lending", "pnl", "capital", "assemble", "dataset"],
    "tape": ["writer", "reader"],
    "engine": ["faults", "checkpoints", "lock", "simulation"],
    "fitting": ["calibration", "backtesting", "scorecard_fit", "takeup_fit"],
    "reporting": ["readback", "metrics", "uncertainty", "summary", "figures", "pages"],
}
FACE = ["api", "__init__", "cli", "__main__"]
ORDER = VOCABULARY + [f"{wing}.{m}" for wing, mods in WINGS.items() for m in mods] + FACE
# Each wing's own rule, besides the order: what it must not import.
NOT_IMPORTED_BY = {
    "config": ("model", "results", "tape", "engine", "fitting", "reporting"),   # the scenario knows no model
    "results": ("model.policy",),                                             # the output side decides nothing
    "reporting": ("model.policy", "model.kernel"),
}
KERNEL_READS = {"codes", "model.rng", "model.products", "model.hazard", "model.prepayment", "model.provisions"}   # no scenario parsing


def module_file(module: str) -> Path:
    return PACKAGE / (module.replace(".", "/") + ".py")


def _absolute(node: ast.ImportFrom, module: str) -> str:
    """The dotted module (below simulator) a from-import names, before its names."""
    if node.level == 0:
        return node.module.removeprefix("simulator").lstrip(".")
    package = module.split(".")[:-1]
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str) -> set[str]:
    """The package modules `module` imports, at the top or inside functions, as dotted names."""
    tree = ast.parse(module_file(module).read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0] == "simulator"):
            base = _absolute(node, module)
            for alias in node.names:
                name = f"{base}.{alias.name}" if base else alias.name
                found.add(name if name in ORDER else base or "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "simulator":
                    found.add(alias.name.removeprefix("simulator").lstrip(".") or "__init__")
    return found - {module}


def test_every_module_has_a_place():
    modules = {p.relative_to(PACKAGE).with_suffix("").as_posix().replace("/", ".") for p in PACKAGE.rglob("*.py")}
    wings = {f"{wing}.__init__" for wing in WINGS}
    assert modules - wings == set(ORDER), f"give new modules a place: {sorted(modules - wings ^ set(ORDER))}"
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(WINGS)


def test_no_wing_hides_a_function_of_the_face():
    """A wing named like a function of the API would replace it on the package once imported
    (`simulator.report` the function, or the wing)."""
    import simulator
    assert not set(WINGS) & set(simulator.__all__), sorted(set(WINGS) & set(simulator.__all__))


def test_wings_hold_no_code():
    """A wing's __init__.py is its docstring alone: every module has one name, no re-export."""
    for wing in WINGS:
        tree = ast.parse((PACKAGE / wing / "__init__.py").read_text())
        assert len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr), f"simulator/{wing}/__init__.py holds code"


def test_modules_import_only_earlier_ones():
    """The vocabulary imports nothing of the package; a module, only what comes before it; the face, anything."""
    for module in ORDER:
        found = imports(module)
        assert found <= set(ORDER), f"simulator/{module}: imports {sorted(found - set(ORDER))}, not modules"
        later = sorted(name for name in found if ORDER.index(name) > ORDER.index(module))
        assert not later, f"simulator/{module.replace('.', '/')}.py imports later modules {later}"
    for module in VOCABULARY:
        assert not imports(module), f"{module} (the vocabulary) imports {sorted(imports(module))}"


def test_each_wing_keeps_its_rule():
    for wing, barred in NOT_IMPORTED_BY.items():
        for module in WINGS[wing]:
            found = [name for name in imports(f"{wing}.{module}") if name.startswith(barred)]
            assert not found, f"simulator/{wing}/{module}.py imports {found}"
    assert imports("model.kernel") <= KERNEL_READS, f"the kernel imports {sorted(imports('model.kernel') - KERNEL_READS)}"
    for module in ORDER[:ORDER.index("api")]:
        assert not imports(module) & set(FACE), f"{module} imports the face"


def test_the_package_face_only_re_exports():
    """simulator/__init__.py defines nothing: it re-exports the API (api.py) and the version."""
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    defined = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
    assert not defined, f"simulator/__init__.py defines {defined}: move them to api.py"
    import simulator
    from simulator import api
    public = [name for name in dir(api) if not name.startswith("_") and getattr(getattr(api, name), "__module__", "")
              == "simulator.api"]
    assert sorted(public) and set(public) <= set(simulator.__all__), sorted(set(public) - set(simulator.__all__))


def test_the_api_documents_parameters_returns_raises():
    """Every public function of the API has a numpydoc docstring: Parameters (when it takes any),
    Returns (when it returns something) and Raises."""
    import inspect
    from simulator import api
    for name in ("load", "run", "read", "report", "compare", "quote", "calibrate", "backtest"):
        doc = inspect.getdoc(getattr(api, name))
        for section in ("Parameters", "Returns", "Raises"):
            assert f"{section}\n----------"[:len(section) + 2] in doc, f"api.{name}: no {section} section"


def test_cited_documents_exist():
    texts = [p.read_text() for p in [*PACKAGE.rglob("*.py"), PACKAGE / "config" / "defaults.toml", ROOT / "README.md"]]
    cited = {m for text in texts for m in re.findall(r"(?:docs|benchmarks)/[\w/.-]+\.md", text)}
    assert cited, "no document cited at all: the pattern is wrong"
    missing = sorted(c for c in cited if not (ROOT / c).is_file())
    assert not missing, f"cited but not in the repository: {missing}"


def _sections(markdown: str) -> dict[str, str]:
    """The text under each heading that names a table, e.g. "## 14. `[products.huabei]`", by table."""
    found, name = {}, None
    for line in markdown.splitlines():
        heading = re.match(r"#+ .*`\[([\w.<>]+)\]`", line)
        if heading:
            name = heading.group(1)
            found[name] = ""
        elif line.startswith("## "):
            name = None
        elif name:
            found[name] += line + "\n"
    return found


def _leaves(table: dict, prefix: str = "") -> list[str]:
    out = []
    for key, value in table.items():
        if isinstance(value, dict) and value:
            out += _leaves(value, f"{prefix}{key}.")
        else:
            out.append(prefix + key)
    return out


def test_every_default_key_is_documented():
    """Every key of defaults.toml is a row (`key`) of its table's section in docs/scenarios.md."""
    import tomllib
    sections = _sections((ROOT / "docs" / "scenarios.md").read_text())
    defaults = tomllib.loads((PACKAGE / "config" / "defaults.toml").read_text())
    defaults["macro"].pop("paths")                       # named paths: section 4 of the document
    defaults.pop("sweep")                                # the user names its keys
    missing = []
    for key in _leaves(defaults):
        parts = key.split(".")
        if key.startswith("applicants.segments."):       # a named table: one section for every name
            parts[2] = "<name>"
        table = next((".".join(parts[:n]) for n in range(len(parts) - 1, 0, -1) if ".".join(parts[:n]) in sections), None)
        rest = parts[len(table.split(".")) if table else 0]
        if table is None or not re.search(rf"`{re.escape(rest)}[`.\[ ]", sections[table]):
            missing.append(key)
    assert len(sections) > 10 and not missing, f"keys of defaults.toml not in docs/scenarios.md: {missing}"


def test_every_results_variable_is_documented():
    """Every variable the Dataset describes (variables.DESCRIPTIONS) is a row of docs/results.md."""
    from simulator.results import variables
    text = (ROOT / "docs" / "results.md").read_text()
    rows = {name for line in text.splitlines() if line.startswith("| `")
            for name in re.findall(r"`(\w+)`", line.split(" | ")[0])}
    missing = [name for name in variables.DESCRIPTIONS if name not in rows and f"`{name}` has dimensions" not in text
               and f"`{name}`, dimensions" not in text]
    assert len(variables.DESCRIPTIONS) > 50 and not missing, f"variables not in docs/results.md: {missing}"


PRODUCT_NAME = re.compile(r"\b(?:huabei|jiebei|yuefu|HUABEI|JIEBEI|YUEFU)\b")


def test_products_are_named_only_in_their_rooms():
    """A product's name or code appears only in the modules docs/architecture.md lists as the rooms
    of product knowledge; everywhere else code goes by the product's kind."""
    doc = (ROOT / "docs" / "architecture.md").read_text()
    listed = doc.split("<!-- product rooms: start -->")[1].split("<!-- product rooms: end -->")[0]
    rooms = set(re.findall(r"`(\w+)\.py`", listed))
    assert {"codes", "loader"} <= rooms
    named = {p.stem for p in PACKAGE.rglob("*.py") if PRODUCT_NAME.search(p.read_text())}
    assert "codes" in named, "the pattern finds no product: it is wrong"
    assert named <= rooms, f"modules naming a product outside the rooms of docs/architecture.md: {sorted(named - rooms)}"


# The functions that may take the whole Scenario: orchestrators, and functions that read four or more
# of its sections (docs/architecture.md, "Who reads the whole scenario"). Every other function takes
# the section or the numbers it reads.
READS_THE_SCENARIO = {
    "backtesting": {"scenario_pd", "replay_accounts", "fraud_share"},
    "calibration": {"against_base", "calibrate"}, "loader": {"__init__", "book_path"},
    "simulation": {"plan_tasks", "use_threads", "task_shapes", "run_task", "_remote_task", "run_accounts", "per_path_values", "cell_sums",
               "__init__", "run"},
    "figures": {"fit_figures"}, "origination": {"new_accounts", "cap_effect", "book_accounts", "_chunk", "_prepared",
                                             "prepare"},
    "pages": {"fit_report"}, "policy": {"takes_offer", "decide", "decide_without_cap"}, "population": {"applicants"}, "provisions": {"ecl_table", "forecasts"},
    "assemble": {"series_shapes", "build_dataset"}, "scorecard_fit": {"from_tape"}, "tail": {"capital_window", "factor_innovations"},
    "writer": {"applications", "frame", "offers_frame", "frames"},
    "terms": {"kernel_terms", "factors", "n_bands", "output_shapes", "sensitivity_months", "sensitivity_slots"},
}


def _takes_the_scenario(arg: ast.arg) -> bool:
    if arg.annotation is None:
        return arg.arg in ("sc", "scenario", "base")
    names = {n.id for n in ast.walk(arg.annotation) if isinstance(n, ast.Name)}
    names |= {n.value for n in ast.walk(arg.annotation) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    return "Scenario" in names


def test_domain_functions_take_what_they_read():
    """A function takes the whole Scenario only if it is listed above (an orchestrator)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                args = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                if any(_takes_the_scenario(a) for a in args):
                    found.setdefault(path.stem, set()).add(node.name)
    assert found.get("simulation"), "the rule finds no function: it is wrong"
    extra = {m: sorted(names - READS_THE_SCENARIO.get(m, set())) for m, names in found.items()}
    extra = {m: names for m, names in extra.items() if names}
    assert not extra, f"functions taking the whole Scenario (give them their section, or list them): {extra}"

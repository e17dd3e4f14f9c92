"""A scenario loaded: defaults.toml under the file and the files it `extends`, `--set` overrides,
keys of earlier versions renamed, sweeps into validated cells (`LoadedScenario`); TOML written back."""
from __future__ import annotations

import copy
import itertools
import json
import math
import re
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError


from .schema import MAX_SWEEP_CELLS, Scenario, ScenarioError, _one_line, show_value

INLINE_TABLES = {"applicants.product_mix", "applicants.also_requests", "provisions.scenarios"}  # replaced whole, not merged
FREE_TABLES = {"macro.paths", "sweep"}  # tables whose keys the user names
NAMED_TABLES = {"applicants.segments"}  # tables whose entries merge by name; the user may add new names
SWEEP_ALIASES = {"macro": "macro.path"}
RESERVED_DIMS = ("path", "month", "product", "score_band", "state", "quantile", "pnl_line", "pnl_yield_line",
                 "pnl_product", "vintage", "months_on_book", "stage", "transfer", "view", "forecast",
                 "sensitivity_month")
# Keys of earlier versions and where their figures live now.
MOVED = {
    "products.huabei.daily_rate": "policy.curve_aprs.huabei (the line's APR by score)",
    "products.yuefu.fee_per_period": "policy.curve_aprs.yuefu (the purchase's all-in APR by score)",
    "applicants.income_median": "applicants.segments.<name>.income_median (scorecard.income_reference for the scorecard)",
    "applicants.dti_mean": "applicants.segments.<name>.dti_mean",
    "applicants.tenure_mean_years": "applicants.segments.<name>.tenure_mean_years",
    "applicants.past_delinquency_mean": "applicants.segments.<name>.past_delinquency_mean",
    "applicants.jiebei.amount_median": "applicants.segments.<name>.loan_amount_median",
}
# Keys of earlier versions renamed in their table: still accepted, with a one-line notice.
RENAMED = {
    "products.yuefu.late_fee_daily": "products.yuefu.penalty_daily_rate",
    "products.yuefu.min_price": "products.yuefu.min_amount",
    "products.yuefu.max_price": "products.yuefu.max_amount",
}
# Keys a sweep cannot vary: they change the shape of the results or the random numbers the cells share.
UNSWEPT = {
    "run.paths": "the number of paths sets the path dimension",
    "run.horizon_months": "the horizon sets the month dimension",
    "run.population_groups": "the groups set the population_group dimension",
    "run.seed": "the cells of a sweep share their random numbers (common random numbers)",
    "run.results": "the results mode sets which variables keep the path dimension",
    "applicants.origination_months": "the origination window sets the vintage dimension",
    "scorecard.bands": "the bands set the score_band dimension",
    "capital.quantiles": "the quantiles set the quantile dimension",
    "capital.importance_quantile": "the cells of a sweep share their factor paths (common random numbers)",
    "capital.month": "the capital month sets the importance-sampling shift the cells share",
}
# Keys a sweep cannot vary under importance sampling: they move the shift of the factor's
# innovations (tail.innovation_shift), so the cells' paths would have different weights.
IMPORTANCE_SHIFT_KEYS = {"factor.autocorrelation": "the factor's autocorrelation sets the importance-sampling shift"}


class LoadedScenario:
    """A validated scenario with where it came from: file, text, overrides, the resolved values,
    and its sweep: `dims` (name, scenario key, values) and one validated scenario per cell."""

    def __init__(self, scenario: Scenario, path: Path, text: str, overrides: list[str],
                 dims: list[tuple[str, str, list]] | None = None, cells: list[Scenario] | None = None,
                 sources: list[Path] | None = None):
        self.scenario, self.path, self.text, self.overrides = scenario, path, text, overrides
        self.dims = dims or []
        self.cells = cells or [scenario]
        self.sources = sources or [path]   # the scenario file and every file it extends

    def resolved(self) -> dict:
        return self.scenario.model_dump(mode="json", exclude_none=True)

    def book_path(self, scenario: Scenario | None = None) -> Path | None:
        """The existing book's file of the scenario (or of one sweep cell), relative to the scenario file."""
        file = (scenario or self.scenario).book.file
        if not file:
            return None
        p = Path(file)
        return p if p.is_absolute() else (self.path.parent / p)

    def book_paths(self) -> list[Path]:
        """The book files of all the sweep's cells, each once."""
        return list(dict.fromkeys(p for p in map(self.book_path, self.cells) if p is not None))


def defaults() -> dict:
    """The default scenario as a nested dict (from the shipped defaults.toml)."""
    text = resources.files("simulator.config").joinpath("defaults.toml").read_text()
    return tomllib.loads(text)


def _renamed(key: str, file: str) -> str:
    """A dotted key by its name in this version: a key RENAMED lists gets its new name, with a
    one-line notice on stderr."""
    new = RENAMED.get(key, key)
    if new != key:
        print(_one_line(f"notice: {file}: {key} is now {new}"), file=sys.stderr)
    return new


def rename_keys(tree: dict, file: str, notice: bool = True) -> None:
    """The keys of a scenario's tree that RENAMED lists, under their new names (with `notice`, each
    said on stderr: `_renamed`); a table that gives both names is an error naming both."""
    for old, new in RENAMED.items():
        *tables, key = old.split(".")
        table = tree
        for part in tables:
            table = table.get(part) if isinstance(table, dict) else None
        if isinstance(table, dict) and key in table:
            renamed = new.rsplit(".", 1)[1]      # a key is renamed within its table
            if renamed in table:
                raise ScenarioError(file, old, f"expected either {old} or {new} (its new name), found both")
            table[renamed] = table.pop(key)
            if notice:
                _renamed(old, file)


def _merge(base: dict, update: dict, prefix: str, file: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if prefix.rstrip(".") in FREE_TABLES:  # user-named entries replace a default of that name
            out[key] = copy.deepcopy(value)
            continue
        if prefix.rstrip(".") in NAMED_TABLES and key not in out:  # a new entry, checked by the schema
            out[key] = copy.deepcopy(value)
            continue
        if key not in out:
            raise ScenarioError(file, dotted, f"unknown key; now {MOVED[dotted]}" if dotted in MOVED else "unknown key")
        if isinstance(out[key], dict) and f"{prefix}{key}" not in INLINE_TABLES:
            if not isinstance(value, dict):
                raise ScenarioError(file, dotted, f"expected a table, found {show_value(value)}")
            out[key] = _merge(out[key], value, dotted + ".", file)
        else:
            out[key] = value
    return out


def parse_override(item: str, file: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (["a","b","c"], value): key and value in TOML syntax (quoted key parts
    such as sweep."policy.apr_cap" allowed); a value that is not TOML is taken as a string."""
    if "=" not in item:
        raise ScenarioError(file, item, "expected --set KEY=VALUE")
    key, raw = (part.strip() for part in item.split("=", 1))
    parts = _key_parts(key, file)
    if "\n" in raw or "\r" in raw:   # TOML would read the next line as a key of its own, and it would be lost
        raise ScenarioError(file, key, f"expected one TOML value on one line (one --set for each key), found a "
                                       f"line break in {show_value(raw)}")
    try:
        tree = tomllib.loads(f"{key} = {raw}")
    except tomllib.TOMLDecodeError:
        try:
            tree = tomllib.loads(f"{key} = {_toml_value(raw)}")   # not TOML: a bare word, taken as a string
        except tomllib.TOMLDecodeError:
            raise ScenarioError(file, key, f"expected a TOML value, found {show_value(raw)}") from None
    for part in parts:
        tree = tree[part]
    return parts, tree


KEY_PROBE = 0x5CE0A1   # a value no key's text can end in: `KEY = 0x5CE0A1` reads back as one key and this value


def _key_parts(key: str, file: str) -> list[str]:
    """The parts of one TOML dotted key on one line (quoted parts such as "policy.apr_cap" allowed)."""
    try:
        node = tomllib.loads(f"{key} = {KEY_PROBE:#x}") if "\n" not in key and "\r" not in key else None
    except tomllib.TOMLDecodeError:
        node = None
    parts = []
    while isinstance(node, dict) and len(node) == 1:
        (part, node), = node.items()
        parts.append(part)
    if node != KEY_PROBE:
        raise ScenarioError(file, key or '""', "expected a dotted key such as run.paths")
    return parts


def _apply_override(tree: dict, parts: list[str], value: Any) -> None:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ScenarioError("", ".".join(parts), "not a table")
    node[parts[-1]] = value


def pydantic_message(err: dict) -> tuple[str, str]:
    """(dotted key, what was expected and found) of a pydantic validation error."""
    loc = [str(p) for p in err["loc"] if not isinstance(p, int) and p != "[key]"]
    idx = [p for p in err["loc"] if isinstance(p, int)]
    key = ".".join(loc)
    msg = err["msg"]
    if msg.startswith("Value error, "):
        # Our own validators say "<key>: expected ..., found ..."
        text = msg[len("Value error, "):]
        sub, _, what = text.partition(": ")
        return (f"{key}.{sub}" if key else sub), what
    if idx:
        key = f"{key}[{idx[0]}]"
    if err["type"] == "extra_forbidden":
        return key, "unknown key"
    if err["type"] == "percent":
        return key, msg
    if err["type"] == "missing":
        return key, "missing"
    if err["type"] in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        n = ctx.get("min_length") if err["type"] == "too_short" else ctx.get("max_length")
        bound = "at least" if err["type"] == "too_short" else "at most"
        return key, f"expected {bound} {n} values, found {ctx.get('actual_length', len(err.get('input') or []))}"
    expected = msg[len("Input should be "):] if msg.startswith("Input should be ") else msg[0].lower() + msg[1:]
    return key, f"expected {expected}, found {show_value(err.get('input'))}"


MAX_SCENARIO_BYTES = 1 << 20   # a scenario file larger than this is not a scenario
MAX_EXTENDS = 16               # files in one chain of `extends`


def read_toml(path: Path, file: str) -> tuple[dict, str]:
    """A TOML file's tree and text (a scenario or a mapping file); every way it can be unreadable is
    a one-line ScenarioError naming `file`."""
    try:
        if not path.exists():
            if path.is_symlink():
                raise ScenarioError(file, "-", "expected a scenario file, found a symbolic link that leads to no file "
                                               "(a loop of links, or a missing target)")
            raise ScenarioError(file, "-", "file not found")
        if not path.is_file():
            raise ScenarioError(file, "-", "expected a regular file, found a directory or a device")
        if path.stat().st_size > MAX_SCENARIO_BYTES:
            raise ScenarioError(file, "-", f"expected a file of at most {MAX_SCENARIO_BYTES:,} bytes, found "
                                           f"{path.stat().st_size:,}")
        raw = path.read_bytes()
    except (OSError, ValueError) as exc:   # no permission, a name too long, a NUL character
        raise ScenarioError(file, "-", f"cannot read the file ({exc.__class__.__name__})") from None
    if raw.startswith(b"\xef\xbb\xbf"):
        raise ScenarioError(file, "-", "expected UTF-8 TOML without a byte-order mark, found one (save the file "
                                       "as UTF-8 without BOM)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScenarioError(file, "-", "expected UTF-8 text, found bytes that are not") from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(file, "-", f"expected valid TOML, found a syntax error ({exc})") from None


def _read_with_parents(path: Path, seen: tuple[Path, ...] = ()) -> tuple[dict, str, list[Path]]:
    """The file's tree merged over the file it `extends` (recursively), the texts of all, and their paths."""
    file = str(path)
    tree, text = read_toml(path, file)
    rename_keys(tree, file)
    parent = tree.pop("extends", None)
    if parent is None:
        return tree, text, [path]
    if not isinstance(parent, str) or not parent:
        raise ScenarioError(file, "extends", f"expected the path of a scenario file, found {show_value(parent)}")
    try:
        parent_path, here = (path.parent / parent).resolve(), path.resolve()
    except (OSError, RuntimeError, ValueError):   # a loop of symbolic links (RuntimeError before Python 3.13), a NUL
        raise ScenarioError(file, "extends", f"expected a scenario file, found {show_value(parent)}, a path that cannot be "
                                             f"followed (a loop of symbolic links?)") from None
    if parent_path in seen or parent_path == here:
        raise ScenarioError(file, "extends", f"expected no cycle of extends, found {parent} again")
    if len(seen) + 1 >= MAX_EXTENDS:
        raise ScenarioError(file, "extends", f"expected a chain of at most {MAX_EXTENDS} files, found a longer one")
    if not parent_path.is_file():
        raise ScenarioError(file, "extends", f"expected a scenario file, found no file {parent!r} relative to "
                                             f"{path.parent.resolve()}")
    base, base_text, sources = _read_with_parents(parent_path, seen + (here,))
    merged = _merge_user(base, tree)
    return merged, f"{text}\n# ---- extends {parent} ----\n{base_text}", [path, *sources]


def _merge_user(base: dict, update: dict, prefix: str = "") -> dict:
    """A child scenario's tables over its parent's (no schema check: that comes after the defaults)."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(out.get(key), dict) and dotted not in INLINE_TABLES \
                and dotted != "sweep":
            out[key] = _merge_user(out[key], value, dotted + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def _validate(tree: dict, file: str, where: str = "") -> Scenario:
    try:
        return Scenario.model_validate(tree)
    except ValidationError as exc:
        key, what = pydantic_message(exc.errors()[0])
        raise ScenarioError(file, key, f"{what}{where}") from None


def sweep_dimension(key: str) -> str:
    """The results dimension of a swept key: its last part (`policy.apr_cap` -> `apr_cap`)."""
    return key.rsplit(".", 1)[-1]


def _override_items(overrides: list[str] | dict[str, Any] | None, file: str) -> list[tuple[str, list[str], Any]]:
    """(as `--set` writes it, key parts, value) of each override: `--set` strings, or a mapping of
    dotted keys to values."""
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        items = []
        for key, value in overrides.items():
            parts = _key_parts(str(key), file)
            try:  # through TOML, as `--set` would read it: numpy scalars become numbers, tuples lists
                written = _toml_value(list(value) if isinstance(value, tuple) else value)
                value = tomllib.loads(f"x = {written}")["x"]
            except (tomllib.TOMLDecodeError, TypeError, AttributeError):
                raise ScenarioError(file, key, f"expected a TOML value (number, string, bool, list or table), "
                                               f"found {value!r}") from None
            items.append((f"{key}={written}", parts, value))
        return items
    if isinstance(overrides, str):
        raise ScenarioError(file, "overrides", "expected a list of KEY=VALUE strings or a dict, found one string")
    return [(item, *parse_override(item, file)) for item in overrides]


def load_scenario(path: str | Path, overrides: list[str] | dict[str, Any] | None = None) -> LoadedScenario:
    """Read (with the files it extends), merge over the defaults, apply overrides (`--set` strings
    such as "run.paths=50", or a dict such as {"run.paths": 50}), validate, and validate every cell
    of its sweep."""
    path = Path(path)
    file = str(path)
    user, text, sources = _read_with_parents(path)
    items = _override_items(overrides, file)
    overrides = [item for item, _, _ in items]
    for _, parts, value in items:
        if ".".join(parts) in RENAMED:
            parts = _renamed(".".join(parts), file).split(".")
        try:
            _apply_override(user, parts, value)
        except ScenarioError as exc:
            raise ScenarioError(file, exc.key, exc.what) from None
    rename_keys(user, file)      # in a table given whole by an override
    tree = _merge(defaults(), user, "", file)
    sweep = tree.pop("sweep")
    scenario = _validate(tree | {"sweep": {}}, file)
    if sweep:
        _validate(tree | {"sweep": sweep}, file)  # shapes of the sweep table itself
        n_cells = math.prod(len(values) for values in sweep.values())
        if n_cells > MAX_SWEEP_CELLS:
            raise ScenarioError(file, "sweep", f"expected at most {MAX_SWEEP_CELLS:,} sweep cells, found {n_cells:,} "
                                               f"({' x '.join(str(len(v)) for v in sweep.values())} values)")
    held = scenario.model_dump()
    dims, names = [], set()
    for key, values in sweep.items():
        target = SWEEP_ALIASES.get(key, key)
        if RENAMED.get(target) in sweep:
            raise ScenarioError(file, f"sweep.{key}", f"expected either {target} or {RENAMED[target]} (its new name), "
                                                      f"found both")
        target = _renamed(target, file)
        node, typed = tree, held
        for part in target.split("."):
            if not isinstance(node, dict) or part not in node:
                raise ScenarioError(file, f"sweep.{key}", f"expected a scenario key such as policy.apr_cap, found {key!r}")
            node, typed = node[part], typed[part]
        if isinstance(node, dict):
            raise ScenarioError(file, f"sweep.{key}", "expected a key holding a value, found a table")
        if target in UNSWEPT:
            raise ScenarioError(file, f"sweep.{key}", f"expected a key that keeps the results' shape and random "
                                                      f"numbers; {UNSWEPT[target]}: run it as separate runs")
        if target in IMPORTANCE_SHIFT_KEYS and scenario.capital.importance_quantile > 0:
            raise ScenarioError(file, f"sweep.{key}", f"expected a key that keeps the paths' weights: with "
                                                      f"capital.importance_quantile > 0, {IMPORTANCE_SHIFT_KEYS[target]}, "
                                                      f"which the cells share (one path_weight): run it as separate runs")
        if any(isinstance(v, (list, dict)) for v in values):
            raise ScenarioError(file, f"sweep.{key}", "expected single values (numbers, strings or booleans), "
                                                      "found a list or table among them")
        given, values = values, [_as_held(v, typed) for v in values]
        seen = set()
        for v in values:
            if json.dumps(v) in seen:
                raise ScenarioError(file, f"sweep.{key}", f"expected distinct values, found {show_value(v)} more than once "
                                                          f"in {show_value(list(given))}")
            seen.add(json.dumps(v))
        if target == "applicants.monthly_volume" and 0 in values and any(v != 0 for v in values):
            raise ScenarioError(file, f"sweep.{key}", "expected volumes all above 0 (a volume of 0 has no vintages, "
                                                      "so the cells' shapes differ)")
        name = sweep_dimension(target) if key not in SWEEP_ALIASES else key
        if name in names or name in RESERVED_DIMS:
            raise ScenarioError(file, f"sweep.{key}", f"expected a dimension name not used already, found {name}")
        names.add(name)
        dims.append((name, target, values))
    cells, wheres = [], []
    for combo in itertools.product(*(values for _, _, values in dims)) if dims else ():
        cell = copy.deepcopy(tree)
        for (name, target, _), value in zip(dims, combo):
            _apply_override(cell, target.split("."), value)
        wheres.append(" (sweep cell " + ", ".join(f"{n}={show_value(v)}" for (n, _, _), v in zip(dims, combo)) + ")")
        cells.append(_validate(cell | {"sweep": {}}, file, wheres[-1]))
    loaded = LoadedScenario(scenario, path, text, overrides, dims, cells or None, sources)
    for sc, where in zip(loaded.cells, wheres or [""]):
        _check_book(loaded.book_path(sc), file, where)
    return loaded


def _as_held(value: Any, held: Any) -> Any:
    """A swept value as its key holds it once validated: an integer swept over a float key is that
    float (560 and 560.0 are one cutoff)."""
    if isinstance(held, float) and isinstance(value, int) and not isinstance(value, bool) \
            and abs(value) <= sys.float_info.max:
        return float(value)
    return value


def _check_book(path: Path | None, file: str, where: str) -> None:
    """The book file of a scenario or sweep cell is there, a regular file (its rows are read later)."""
    if path is None:
        return
    try:
        found = "" if path.is_file() else "a directory or a device" if path.exists() else "no file"
    except (OSError, ValueError):   # a name too long, a NUL character
        found = "a path that cannot be opened"
    if found:
        raise ScenarioError(file, "book.file", f"expected a book file (CSV or Parquet) that exists, found {found} "
                                               f"at {path}{where}")


def to_toml(tree: dict, prefix: tuple[str, ...] = ()) -> str:
    """A small TOML writer for the resolved scenario (tables, scalars, lists, inline dicts): it reads
    back as the same tree, whatever the names of its tables and keys."""
    scalars, tables = [], []
    for key, value in tree.items():
        if isinstance(value, dict) and ".".join((*prefix, key)) not in INLINE_TABLES:
            tables.append((key, value))
        else:
            scalars.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = []
    if scalars:
        if prefix:
            out.append(f"[{'.'.join(map(_toml_key, prefix))}]")
        out.extend(scalars)
        out.append("")
    for key, value in tables:
        out.append(to_toml(value, (*prefix, key)))
    return "\n".join(out)


def _toml_key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted (so "policy.apr_cap" stays one key)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, and DEL and lone surrogates escaped too (TOML takes
    neither as they are; a surrogate's escape is refused when read back, as it should be)."""
    return re.sub("[\x7f\ud800-\udfff]", lambda m: f"\\u{ord(m.group()):04x}", json.dumps(text, ensure_ascii=False))


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


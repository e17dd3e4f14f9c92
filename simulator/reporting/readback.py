"""A results file read back: checked against what this version writes (its attributes, dimensions,
coordinates and variables) before `report`, `compare` or `simulator.read` use it; the schema is built
by the writer's own code, so it cannot drift from it."""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import xarray as xr
from pydantic import ValidationError

from ..model import tail, terms
from .._version import __version__
from ..config.loader import LoadedScenario, pydantic_message, rename_keys
from ..config.schema import Scenario, ScenarioError
from ..results.assemble import build_dataset, combine_cells, path_series
from ..results.dataset import read


# The schema run has one path and no applicants: along these its sizes are not the file's.
RESIZED = {"path": 1, "vintage": 0}   # dimension: the least size a file may have


@functools.lru_cache(maxsize=8)
def scenario_tree(resolved: str) -> dict:
    """A results file's resolved scenario (JSON) as a tree, keys of earlier versions under their new
    names (loader.RENAMED), so that files written before a rename still read (silently: the file is
    not the user's to edit)."""
    tree = json.loads(resolved)
    rename_keys(tree, "scenario_resolved", notice=False)
    return tree


def written(resolved: str, mode: str) -> xr.Dataset:
    """What this version writes for the scenario `resolved` (its JSON) in results mode `mode`, built
    from zero sums of one path with no applicants and no book: the schema `check` holds files to."""
    from ..engine.simulation import cell_sums      # the kernel's modules, only when a file is read back
    from ..model.origination import prepare
    from ..model.scoring import band_labels

    tree = scenario_tree(resolved)
    tree["run"] |= {"paths": 1, "results": mode}
    tree["applicants"]["monthly_volume"] = 0
    tree["book"]["file"] = ""
    sc = Scenario.model_validate(tree)
    loaded = LoadedScenario(sc, Path("schema"), "", [])
    accounts, counts = prepare(sc)
    zeros = {name: np.zeros((1,) + shape, dtype=np.int64) for name, shape in terms.output_shapes(sc).items()}
    window = tail.capital_window(sc)
    series = path_series(zeros, window) if mode == "summary" else None
    weight = terms.factors(sc).weight
    cell = build_dataset(loaded, sc, band_labels(sc.scorecard.bands), cell_sums(sc, accounts, counts, zeros, weight),
                         __version__, series)
    return combine_cells(loaded, [cell], weight)


def _json(text) -> object:
    """An attribute's JSON value, or None when it is not JSON text."""
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None


def _described(value) -> str:
    """An attribute as an error says it was found: none, text that is not JSON, or what its JSON holds."""
    if value is None:
        return "none"
    if isinstance(value, str) and _json(value) is None and value.strip() != "null":
        return "text that is not JSON"
    found = _json(value) if isinstance(value, str) else value
    return {dict: "a JSON table", list: "a JSON list"}.get(type(found), repr(found)[:80])


def _listed(values: np.ndarray) -> str:
    """A coordinate's values as an error lists them."""
    text = ", ".join(map(str, values.tolist()))
    return f"[{text if len(text) <= 120 else text[:117] + '...'}]"


def check(ds: xr.Dataset, path: Path) -> None:
    """Refuse (a ScenarioError naming the file and the attribute, coordinate or variable) a results
    file that is not what this version writes: its attributes (the JSON ones parsed, the scenario a
    valid one), every variable with its dimensions (and any swept ones) and a numeric dtype, every
    dimension with its coordinate (the labels and levels the scenario sets), at least one path."""
    version = ds.attrs.get("simulator_version")
    written_by = f"; the file is of simulator {version}" if isinstance(version, str) and version != __version__ \
        else ""

    def refuse(key: str, expected: str, found: str):
        raise ScenarioError(str(path), key, f"expected {expected} (as this simulator version, {__version__}, "
                                            f"writes its results), found {found}{written_by}")

    mode = ds.attrs.get("results_mode")
    if mode not in ("full", "summary"):
        refuse("results_mode", "full or summary", "none" if mode is None else repr(mode))
    resolved = ds.attrs.get("scenario_resolved")
    if not isinstance(_json(resolved), dict):
        refuse("scenario_resolved", "the resolved scenario as a JSON table", _described(resolved))
    try:
        Scenario.model_validate(scenario_tree(resolved))
    except ValidationError as exc:
        key, what = pydantic_message(exc.errors()[0])
        refuse("scenario_resolved", "a valid scenario", f"{key}: {what}")
    schema = written(resolved, mode)
    for name, value in schema.attrs.items():
        if name not in ds.attrs:
            refuse(name, "the attribute", "none")
        kind = type(_json(value))
        if kind in (dict, list) and not isinstance(_json(ds.attrs[name]), kind):
            refuse(name, f"a JSON {'table' if kind is dict else 'list'}", _described(ds.attrs[name]))
    sweep = json.loads(ds.attrs["sweep"])
    for entry in sweep:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)):
            refuse("sweep", "[name, key, values] for each swept key", repr(entry)[:80])
    swept = [name for name, _, _ in sweep]
    for name in swept:
        if name in schema.dims or name not in ds.coords or ds[name].dims != (name,) or ds.sizes[name] < 1:
            refuse(name, "a swept dimension of its own, with a coordinate of at least one value",
                   "a dimension the results use already" if name in schema.dims else
                   "none" if name not in ds.coords or ds[name].dims != (name,) else "no values")
    for name, coord in schema.coords.items():
        if name not in ds.coords or ds[name].dims != (name,):
            refuse(name, f"the coordinate {name}", "none" if name not in ds.coords else f"dimensions {ds[name].dims}")
        values = ds[name].values
        if name in RESIZED:
            if values.dtype.kind not in "iu" or len(values) < RESIZED[name]:
                refuse(name, f"a coordinate of at least {RESIZED[name]} whole number(s)",
                       f"{len(values)} values of dtype {values.dtype}")
        elif not np.array_equal(values, coord.values):
            refuse(name, _listed(coord.values), _listed(values))
    for name, var in schema.data_vars.items():
        if name not in ds.data_vars:
            refuse(name, "the variable", "none")
        dims = tuple(d for d in ds[name].dims if d not in swept)
        if dims != var.dims:
            refuse(name, f"dimensions {var.dims} (and any swept ones)", f"{ds[name].dims}")
        if ds[name].dtype.kind not in "iuf":
            refuse(name, "numbers", f"values of dtype {ds[name].dtype}")


def results_path(folder: Path) -> Path:
    """The results file of a run folder, or a results.nc path itself."""
    folder = Path(folder)
    return folder if folder.suffix == ".nc" else folder / "results.nc"


def open_run(folder: Path) -> tuple[Path, xr.Dataset]:
    """The results of a run folder (or a results.nc path), checked (`check`); a ScenarioError if
    missing, unreadable or not what this version writes."""
    path = results_path(folder)
    if not path.is_file():
        raise ScenarioError(str(path), "-", "expected the results.nc of a run, found no such file")
    try:
        ds = read(path)
    except Exception as exc:   # a file from elsewhere fails in the HDF5, NetCDF or CF layers, each its own way
        raise ScenarioError(str(path), "-", f"expected a results file, found one that cannot be read "
                                            f"({exc.__class__.__name__}: {exc})") from None
    check(ds, path)
    return path, ds

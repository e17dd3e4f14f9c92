"""The results file: NetCDF written and read, and the helpers every reader of results shares (sweep
cells, run name, steady months, delinquency ratios)."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import xarray as xr

from ..codes import STATES
from ..config import files


CHUNK_BYTES = 1 << 27   # an array is stored as one compressed chunk, or split along its first axis into 128 MiB ones


def _chunks(var: xr.DataArray) -> tuple[int, ...]:
    """The HDF5 chunk of an array: all of it, up to CHUNK_BYTES. Fewer, larger chunks than h5py's
    guess compress faster and smaller, and a results file is always read whole."""
    shape = tuple(max(1, n) for n in var.shape)
    row = var.dtype.itemsize * int(np.prod(shape[1:]))
    return (max(1, min(shape[0], CHUNK_BYTES // row)),) + shape[1:]


def write(ds: xr.Dataset, path: Path) -> None:
    """Write a results file atomically (never a half-written result), its arrays compressed (lossless
    zlib: about a quarter of the size, read back identical)."""
    encoding = {name: {"zlib": True, "complevel": 4, "chunksizes": _chunks(var)}
                for name, var in ds.data_vars.items() if var.ndim > 0}
    files.write_atomic(Path(path), lambda tmp: ds.to_netcdf(tmp, engine="h5netcdf", encoding=encoding))


def read(path: Path) -> xr.Dataset:
    """Open a results file (loaded into memory, file closed)."""
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def swept(ds: xr.Dataset) -> list[str]:
    """The names of a sweep's swept keys (none for a single run), whether or not `ds` still has them as
    dimensions (a selection of one cell keeps them as scalar coordinates)."""
    return [name for name, _, _ in json.loads(ds.attrs.get("sweep", "[]"))]


def sweep_names(ds: xr.Dataset) -> list[str]:
    """The swept keys that are dimensions of `ds`."""
    return [name for name in swept(ds) if name in ds.dims]


def steady_months(ds: xr.Dataset) -> slice:
    """Months 13 .. H when the horizon allows (the book has seasoned), else all months."""
    horizon = ds.sizes["month"]
    return slice(13 if horizon > 12 else 1, horizon)


def cells(ds: xr.Dataset) -> list[tuple[str, dict[str, int]]]:
    """(label, position of the cell along each swept dimension) for each cell of a sweep, in order;
    one ("", {}) for a single run. The label reads like "apr_cap=0.24, macro=severe"."""
    names = sweep_names(ds)
    out = []
    for index in itertools.product(*(range(ds.sizes[n]) for n in names)):
        label = ", ".join(f"{n}={np.asarray(ds[n].values[i]).item()}" for n, i in zip(names, index))
        out.append((label, dict(zip(names, index))))
    return out


def run_name(ds: xr.Dataset) -> str:
    """The run's name (run.name of the resolved scenario)."""
    try:
        return json.loads(ds.attrs["scenario_resolved"])["run"]["name"]
    except (KeyError, TypeError, ValueError):
        return str(ds.attrs.get("run_name", "run"))


def delinquency_ratio(ds: xr.Dataset, worst_from: str) -> xr.DataArray:
    """Share of balances in `worst_from` and worse (M2 for 30+, M4 for 90+), by path and month."""
    bal = ds["balance"].sum(("product", "score_band"))
    worse = bal.sel(state=list(STATES[STATES.index(worst_from):])).sum("state")
    total = bal.sum("state")
    return (worse / total.where(total > 0)).fillna(0.0)


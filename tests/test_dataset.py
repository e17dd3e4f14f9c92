"""The results file (simulator/results/dataset.py): arrays stored whole or in chunks, read back identical."""
from __future__ import annotations

import numpy as np
import xarray as xr

from simulator.results import dataset


def test_results_arrays_are_stored_whole_up_to_the_chunk_limit(tmp_path, monkeypatch):
    """Each array is one compressed chunk, split along its first axis above CHUNK_BYTES; read back identical."""
    import h5py

    ds = xr.Dataset({"small": (("path", "month"), np.arange(120.0).reshape(3, 40)),
                     "big": (("cell", "month", "state"), np.arange(4000, dtype=np.int64).reshape(10, 40, 10)),
                     "empty": (("bucket", "vintage"), np.zeros((0, 4)))})
    monkeypatch.setattr(dataset, "CHUNK_BYTES", 8 * 400 * 3)          # three cells of `big` a chunk
    dataset.write(ds, tmp_path / "results.nc")
    with h5py.File(tmp_path / "results.nc", "r") as f:
        assert f["small"].chunks == (3, 40) and f["big"].chunks == (3, 40, 10) and f["empty"].chunks == (1, 4)
        assert f["big"].compression == "gzip"
    xr.testing.assert_identical(dataset.read(tmp_path / "results.nc"), ds)

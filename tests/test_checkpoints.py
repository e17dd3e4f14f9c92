"""Checkpoints trusted only when provably this run's: a task's sums read back as saved, a file that is
not exactly what the plan expects recomputed, the fingerprint following the scenario and the plan,
and a folder that is not the run's own refused (unit level: no run)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simulator.engine.checkpoints import FINGERPRINT, Checkpoints, Task, _checksum, fingerprint
from simulator.config.schema import ScenarioError
from simulator.config.loader import load_scenario

SHAPES = [{"stocks": (2, 3), "flows": (4,)}]   # per path, as terms.output_shapes gives them
TASK = Task(0, 2, 5, 0, 10)                     # paths 2 .. 4: three rows


@pytest.fixture
def load(tmp_path):
    """A scenario of the test's own, loaded with `overrides`."""
    path = tmp_path / "s.toml"
    path.write_text('[run]\nname = "ck"\nseed = 3\n')

    def make(*overrides: str):
        return load_scenario(path, ["applicants.monthly_volume=0", *overrides])

    return make


def sums(task: Task = TASK, start: int = 0) -> dict[str, np.ndarray]:
    rows = task.p1 - task.p0
    return {name: np.arange(start, start + rows * int(np.prod(shape)), dtype=np.int64).reshape((rows, *shape))
            for name, shape in SHAPES[0].items()}


def saved(store: Checkpoints, task: Task, arrays: dict[str, np.ndarray], **meta) -> None:
    """A checkpoint file written by hand: `arrays` with self-consistent metadata (`meta` overrides it)."""
    fields = {"task__": np.asarray(task, dtype=np.int64), "fingerprint__": np.asarray(store.digest),
              "checksum__": np.asarray(_checksum(arrays))} | meta
    store.folder.mkdir(parents=True, exist_ok=True)
    with open(store._path(task), "wb") as handle:
        np.savez(handle, **arrays, **fields)


def test_a_saved_task_loads_back_as_saved(tmp_path, load):
    """No folder until the first task is saved (bad input writes nothing); then the folder holds the
    run's fingerprint, and the task's sums load back identical; a task not saved loads as None."""
    loaded = load()
    store = Checkpoints(tmp_path / ".checkpoint", loaded, False, SHAPES)
    assert not store.folder.exists()
    store.save(TASK, sums())
    assert (store.folder / FINGERPRINT).read_text() == fingerprint(loaded)
    back = store.load(TASK)
    assert set(back) == set(SHAPES[0])
    for name, array in sums().items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == np.int64
    assert store.load(Task(0, 5, 8, 0, 10)) is None
    assert not list(store.folder.glob("*.tmp"))


def test_another_tasks_file_is_not_used(tmp_path, load):
    """A file holding another task's sums under this task's name (same shapes, intact checksum) is
    recomputed: the task's identity is checked."""
    store = Checkpoints(tmp_path / ".checkpoint", load(), False, SHAPES)
    other = Task(0, 5, 8, 0, 10)
    store.save(other, sums(other, start=100))
    store._path(other).rename(store._path(TASK))
    assert store.load(TASK) is None


@pytest.mark.parametrize("change", ["float sums", "an array missing", "an extra array", "rows of another task",
                                    "another run's fingerprint", "checksum of other sums", "no checksum"])
def test_a_file_that_is_not_what_the_plan_expects_is_recomputed(tmp_path, load, change):
    """Each file is self-consistent where it can be (its checksum its own arrays'), yet not what this
    run's plan expects: names, dtypes, shapes, fingerprint and checksum are each checked."""
    store = Checkpoints(tmp_path / ".checkpoint", load(), False, SHAPES)
    arrays, meta = sums(), {}
    if change == "float sums":
        arrays["flows"] = arrays["flows"].astype(np.float64)
    elif change == "an array missing":
        del arrays["flows"]
    elif change == "an extra array":
        arrays["rolls"] = np.zeros((3, 2), dtype=np.int64)
    elif change == "rows of another task":
        arrays = sums(Task(0, 2, 6, 0, 10))
    elif change == "another run's fingerprint":
        meta = {"fingerprint__": np.asarray("0" * 64)}
    elif change == "checksum of other sums":
        meta = {"checksum__": np.asarray(_checksum(sums(start=1)))}
    saved(store, TASK, arrays, **meta)
    if change == "no checksum":
        with np.load(store._path(TASK)) as kept:
            fields = {name: kept[name] for name in kept.files if name != "checksum__"}
        np.savez(store._path(TASK), **fields)
    assert store.load(TASK) is None
    saved(store, TASK, sums())                 # the same file made right is used
    assert store.load(TASK) is not None


def test_a_linked_checkpoint_file_is_not_followed(tmp_path, load):
    store = Checkpoints(tmp_path / ".checkpoint", load(), False, SHAPES)
    elsewhere = Task(0, 5, 8, 0, 10)
    saved(store, TASK, sums())
    store._path(TASK).rename(store._path(elsewhere))
    store._path(TASK).symlink_to(store._path(elsewhere))
    assert store.load(TASK) is None


def test_the_fingerprint_follows_the_scenario_and_the_plan(tmp_path, load):
    """Equal for the same scenario loaded twice; another for another seed, task plan or horizon, for
    a sweep whose later cell alone differs (every cell counts), and for a book file whose content
    alone changed."""
    base = fingerprint(load())
    assert fingerprint(load()) == base
    others = [fingerprint(load(change)) for change in ("run.seed=4", "engine.task_paths=3", "engine.task_borrowers=7",
                                                        "run.horizon_months=24")]
    sweeps = []
    for last in (600, 620):
        path = tmp_path / f"sweep{last}.toml"
        path.write_text(f'[run]\nname = "ck"\nseed = 3\n[sweep]\n"policy.cutoff_score" = [560, {last}]\n')
        sweeps.append(fingerprint(load_scenario(path, ["applicants.monthly_volume=0"])))
    book = tmp_path / "book.csv"
    books = []
    for principal in (8000, 9000):
        book.write_text("product,principal,apr,term_months,method,months_on_book,state,overdue,pd_12m\n"
                        f"jiebei,{principal},0.18,12,equal_installment,3,current,,0.03\n")
        books.append(fingerprint(load("book.file=book.csv")))
    assert len({base, *others, *sweeps, *books}) == 1 + len(others) + len(sweeps) + len(books)


def test_resume_takes_only_this_runs_checkpoints(tmp_path, load):
    """Resumed with the same scenario, the saved task is used; with another seed, or with no
    fingerprint in the folder, the error names the folder and --resume and leaves the files be."""
    folder = tmp_path / ".checkpoint"
    Checkpoints(folder, load(), False, SHAPES).save(TASK, sums())
    again = Checkpoints(folder, load(), True, SHAPES)
    np.testing.assert_array_equal(again.load(TASK)["stocks"], sums()["stocks"])
    with pytest.raises(ScenarioError) as info:
        Checkpoints(folder, load("run.seed=4"), True, SHAPES)
    assert (info.value.file, info.value.key) == (str(folder), "--resume") and "another run's" in info.value.what
    (folder / FINGERPRINT).unlink()
    with pytest.raises(ScenarioError, match="found no fingerprint"):
        Checkpoints(folder, load(), True, SHAPES)
    assert [p.name for p in folder.iterdir()] == [again._path(TASK).name]


def test_a_fresh_run_drops_earlier_checkpoints(tmp_path, load):
    folder = tmp_path / ".checkpoint"
    Checkpoints(folder, load(), False, SHAPES).save(TASK, sums())
    store = Checkpoints(folder, load(), False, SHAPES)
    assert not folder.exists() and store.load(TASK) is None


def test_a_file_or_link_in_place_of_the_folder_is_refused_and_kept(tmp_path, load):
    """Not the run's own folder: an error naming it and --out; neither the file nor the link's target
    is touched. remove_folder removes a link itself, never what it points to."""
    (tmp_path / "a_file").write_text("mine")
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    (tmp_path / "a_link").symlink_to(target, target_is_directory=True)
    for folder in (tmp_path / "a_file", tmp_path / "a_link"):
        for resume in (False, True):
            with pytest.raises(ScenarioError) as info:
                Checkpoints(folder, load(), resume, SHAPES)
            assert (info.value.file, info.value.key) == (str(folder), "--out")
    assert (tmp_path / "a_file").read_text() == "mine" and (tmp_path / "a_link").is_symlink()
    Checkpoints.remove_folder(tmp_path / "a_link")
    assert not (tmp_path / "a_link").exists() and (target / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["a_file", "elsewhere", "s.toml"]


def test_threads_and_block_sizes_leave_the_fingerprint(load):
    """Threads and block sizes change no bit of the results, so a run may resume with others."""
    base = fingerprint(load())
    assert fingerprint(load("engine.threads=1")) == base == fingerprint(load("engine.block_size=17"))

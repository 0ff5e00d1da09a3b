"""The artifact store touches only what it wrote; the run lock admits exactly one writer."""

import json
import multiprocessing
import os
import re
import socket
import threading

import pytest
import torch

from kdbench.cli import main
from kdbench.errors import ConfigError
from kdbench.run.lock import LOCK_NAME, RunLock
from kdbench.run.store import ArtifactStore

MARKER_NAME = "KDBENCH_STORE"

FOREIGN = {
    "package.json": b'{"name": "someone-elses-app", "version": "1.0.0"}\n',
    "settings.json": b'{"theme": "dark"}\n',
    "tool/x.pt": b"\x80\x02 not a kdbench checkpoint",
    "tool/x.json": b'{"sha256": "0000", "what": "another program\'s index"}',
    "tool/.foo.tmp": b"another program's temporary file",
    ".foo.tmp": b"another program's temporary file",
    "teachers/notes.json": b'{"kind": "teachers", "key": "something-else"}',  # in a kdbench folder, not proved ours
    "teachers/.foo.tmp": b"not kdbench's temporary-name pattern",
}


def snapshot(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def write_files(root, files):
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def backdate(root, seconds=2 * 86400):
    for p in root.rglob("*"):
        st = p.stat()
        os.utime(p, (st.st_atime - seconds, st.st_mtime - seconds))


def kdbench_entries(root):
    """Two good checkpoints, one corrupt one, one explanation map, and a stale kdbench temp file."""
    store = ArtifactStore(root)
    weights = {"w": torch.zeros(3)}
    store.save("teachers", "aaaaaaaaaaaaaaaa", weights, {"settings": {"dataset": "synthetic"}})
    store.save("students", "bbbbbbbbbbbbbbbb", weights, {"job": "hinton"})
    bad = store.save("students", "cccccccccccccccc", weights, {})
    bad.write_bytes(bad.read_bytes()[:10])  # truncated: a corrupt kdbench entry
    store.save_arrays("maps", "dddddddddddddddd", {"gradcam": torch.ones(2, 4, 4).numpy()})
    (root / "teachers" / ".eeeeeeeeeeeeeeee.pt.k3j2h1g0.tmp").write_bytes(b"half a checkpoint")
    return store


@pytest.mark.parametrize("flags, kept", [
    ([], {"teachers/aaaaaaaaaaaaaaaa", "students/bbbbbbbbbbbbbbbb", "maps/dddddddddddddddd"}),
    (["--older-than", "0"], set()),
    (["--all"], set()),
])
def test_prune_removes_only_files_the_store_proves_it_wrote(tmp_path, flags, kept, capsys):
    root = tmp_path / "cache"
    write_files(root, FOREIGN)
    kdbench_entries(root)
    backdate(root)
    young = root / "students" / ".ffffffffffffffff.pt.a1b2c3d4.tmp"  # a save in progress right now
    young.write_bytes(b"being written")
    foreign_before = {k: v for k, v in snapshot(root).items() if k in FOREIGN}
    assert foreign_before.keys() == FOREIGN.keys()

    assert main(["cache", "prune", "--cache-dir", str(root), *flags]) == 0, capsys.readouterr().err

    after = snapshot(root)
    assert {k: v for k, v in after.items() if k in FOREIGN} == foreign_before  # byte for byte
    ours = {k.rsplit(".", 1)[0] for k in after if k not in FOREIGN and k != MARKER_NAME and k != "students/" + young.name}
    assert ours == kept and young.exists()


def test_prune_all_removes_explanation_maps_too(tmp_path):
    root = tmp_path / "cache"
    store = ArtifactStore(root)
    store.save_arrays("maps", "dddddddddddddddd", {"gradcam": torch.ones(2, 4, 4).numpy()})
    store.save_arrays("featuremaps", "dddddddddddddddd", {"00 stem": torch.ones(2, 4, 4).numpy()})
    store.save("teachers", "aaaaaaaaaaaaaaaa", {"w": torch.zeros(3)}, {})
    assert {a.kind for a in store.entries()} == {"maps", "featuremaps", "teachers"}
    assert main(["cache", "prune", "--all", "--cache-dir", str(root)]) == 0
    assert list(root.rglob("*.npz")) == [] and list(root.rglob("*.pt")) == [] and store.entries() == []


@pytest.mark.parametrize("action", ["prune", "ls"])
def test_a_folder_that_is_not_a_kdbench_store_is_refused_in_one_line(tmp_path, action, capsys):
    root = tmp_path / "dotcache"
    write_files(root, FOREIGN)
    before = snapshot(root)
    assert main(["cache", action, "--cache-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"{root} is not a kdbench artifact store (no KDBENCH_STORE marker)" in err
    assert snapshot(root) == before
    # an absent or empty folder is simply an empty store: nothing to list or prune, nothing created
    (tmp_path / "empty").mkdir()
    for d in (tmp_path / "absent", tmp_path / "empty"):
        assert main(["cache", action, "--cache-dir", str(d)]) == 0
    assert not (tmp_path / "absent").exists() and list((tmp_path / "empty").iterdir()) == []


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "-inf"])
def test_older_than_must_be_a_finite_non_negative_number_of_days(tmp_path, value, capsys):
    root = tmp_path / "cache"
    kdbench_entries(root)
    before = snapshot(root)
    assert main(["cache", "prune", f"--older-than={value}", "--cache-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--older-than" in err and "Traceback" not in err
    assert snapshot(root) == before


MALFORMED_META = {
    "k1": b"\xff\xfe\x00 not utf-8",
    "k2": b"not json at all",
    "k3": b"[1, 2, 3]",
    "k4": b'"a json string"',
    "k5": b'{"kind": "students", "key": "k5"}',  # another kind's metadata: not this entry's
}


def test_malformed_metadata_is_not_ours_and_never_a_traceback(tmp_path, capsys):
    root = tmp_path / "cache"
    store = ArtifactStore(root)
    store.save("teachers", "aaaaaaaaaaaaaaaa", {"w": torch.zeros(3)}, {"settings": ["not", "a", "dict"]})
    for key, meta in MALFORMED_META.items():
        write_files(root, {f"teachers/{key}.json": meta, f"teachers/{key}.pt": b"weights"})
    before = {k: v for k, v in snapshot(root).items() if k.split("/")[-1].split(".")[0] in MALFORMED_META}

    for key in MALFORMED_META:
        assert store.load("teachers", key) is None
    assert [a.key for a in store.entries()] == ["aaaaaaaaaaaaaaaa"]
    assert main(["cache", "ls", "--cache-dir", str(root)]) == 0
    assert main(["cache", "prune", "--cache-dir", str(root)]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert {k: v for k, v in snapshot(root).items() if k in before} == before
    assert store.load("teachers", "aaaaaaaaaaaaaaaa") is not None


def test_a_cache_from_before_the_marker_is_adopted_on_load_and_then_pruned_whole(tmp_path):
    root = tmp_path / "cache"
    kdbench_entries(root)
    (root / MARKER_NAME).unlink(missing_ok=True)  # as written by kdbench before the marker existed
    (root / "maps" / "dddddddddddddddd.json").unlink()  # older kdbench wrote maps without metadata
    backdate(root)
    assert ArtifactStore(root).load("teachers", "aaaaaaaaaaaaaaaa") is not None
    assert (root / MARKER_NAME).is_file()
    assert main(["cache", "prune", "--all", "--cache-dir", str(root)]) == 0
    assert [p for p in root.rglob("*") if p.is_file()] == [root / MARKER_NAME]


def test_an_old_cache_mixed_with_foreign_files_is_not_adopted(tmp_path, capsys):
    root = tmp_path / "cache"
    kdbench_entries(root)
    (root / MARKER_NAME).unlink(missing_ok=True)  # as written by kdbench before the marker existed
    write_files(root, {"package.json": FOREIGN["package.json"]})
    assert ArtifactStore(root).load("teachers", "aaaaaaaaaaaaaaaa") is not None
    assert not (root / MARKER_NAME).exists()
    before = snapshot(root)
    assert main(["cache", "prune", "--cache-dir", str(root)]) == 2
    assert "is not a kdbench artifact store" in capsys.readouterr().err
    assert snapshot(root) == before


# ---- the run lock ---------------------------------------------------------------------------------

ROUNDS, RACERS = 20, 4
FORK = multiprocessing.get_context("fork")


def _dead_pid():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _race(barrier, dirs, results, me):
    for r, out in enumerate(dirs):
        barrier.wait()
        lock, outcome = None, 3
        try:
            lock = RunLock(out).acquire()
            outcome = 1
        except ConfigError as exc:
            outcome = 0 if "another kdbench run" in str(exc) else 2
        except Exception:  # noqa: BLE001  (any other outcome fails the test)
            outcome = 2
        results[r * RACERS + me] = outcome
        barrier.wait()  # everyone has tried before any holder lets go
        if lock:
            lock.release()


def test_racing_runs_exactly_one_takes_the_lock_even_over_a_stale_or_garbage_lock_file(tmp_path):
    dirs = []
    for r in range(ROUNDS):
        out = tmp_path / f"out{r}"
        out.mkdir()
        left = {"pid": _dead_pid(), "host": socket.gethostname()} if r % 2 else None
        (out / LOCK_NAME).write_bytes(json.dumps(left).encode() if left else b"\x00garbage\xff")
        dirs.append(str(out))
    barrier = FORK.Barrier(RACERS, timeout=20)
    results = FORK.Array("b", [9] * (ROUNDS * RACERS))
    procs = [FORK.Process(target=_race, args=(barrier, dirs, results, i)) for i in range(RACERS)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    rounds = [list(results[r * RACERS:(r + 1) * RACERS]) for r in range(ROUNDS)]
    assert all(sorted(r) == [0] * (RACERS - 1) + [1] for r in rounds), rounds
    assert not any((tmp_path / f"out{r}" / LOCK_NAME).exists() for r in range(ROUNDS))


def test_a_run_that_locks_the_file_its_holder_just_removed_starts_over(tmp_path, monkeypatch):
    """The holder releases (and removes the file) between a newcomer's open and its lock: the newcomer's lock
    on the removed file guards nothing, so it must take the lock afresh, and a third run must then be refused."""
    import types

    import kdbench.run.lock as lock_module

    holder = RunLock(tmp_path).acquire()
    real = getattr(lock_module, "fcntl", None) or __import__("fcntl")
    calls = []

    def flock(fd, op):
        if not calls:
            holder.release()
        calls.append(op)
        return real.flock(fd, op)

    monkeypatch.setattr(lock_module, "fcntl", types.SimpleNamespace(flock=flock, LOCK_EX=real.LOCK_EX,
                                                                    LOCK_NB=real.LOCK_NB), raising=False)
    newcomer = RunLock(tmp_path).acquire()
    assert len(calls) == 2  # locked the removed file, saw it, started over on the new one
    with pytest.raises(ConfigError, match=rf"another kdbench run \(pid {os.getpid()}\)"):
        RunLock(tmp_path).acquire()
    newcomer.release()
    assert not (tmp_path / LOCK_NAME).exists()


def test_the_lock_of_a_killed_run_is_free_at_once(tmp_path):
    out = tmp_path / "out"
    ready = FORK.Event()

    def hold_then_die():
        lock = RunLock(out).acquire()  # noqa: F841  (held until killed)
        ready.set()
        threading.Event().wait(60)  # killed long before

    child = FORK.Process(target=hold_then_die)
    child.start()
    assert ready.wait(20)
    with pytest.raises(ConfigError, match=rf"another kdbench run \(pid {child.pid}\) is writing to {re.escape(str(out))}"):
        RunLock(out).acquire()
    os.kill(child.pid, 9)
    # dead but not yet reaped by its parent (a zombie): its pid still "exists", its lock does not
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
    with RunLock(out):
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    child.join()
    assert not (out / LOCK_NAME).exists()


LEFT_BEHIND = [
    b"\xff\xfe\x00 garbage bytes", b"not json", b"[1, 2]", b'"pid"',
    json.dumps({"pid": "abc", "host": socket.gethostname()}).encode(),
    json.dumps({"pid": 1, "host": socket.gethostname()}).encode(),  # a live pid that holds no lock
]


def test_a_lock_file_left_behind_does_not_stop_a_new_run(tmp_path):
    for i, content in enumerate(LEFT_BEHIND):
        out = tmp_path / f"out{i}"
        out.mkdir()
        (out / LOCK_NAME).write_bytes(content)
        lock = RunLock(out).acquire()
        with pytest.raises(ConfigError, match=rf"another kdbench run \(pid {os.getpid()}\) is writing to {re.escape(str(out))}"):
            RunLock(out).acquire()
        lock.release()
        assert not (out / LOCK_NAME).exists(), content

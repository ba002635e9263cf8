"""Input files (hmmpar.io.inputs, hmmpar.io.user_code): non-regular files are refused
without blocking, sizes are bounded, bad content is a one-line ConfigError naming the key
and the file, paths follow one rule, and a restart refuses input files whose content
changed. In-process on one rank (MPI.COMM_SELF); reads that could block run under an alarm."""
from __future__ import annotations

import os
import shutil
import signal
import socket
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

import hmmpar  # noqa: F401 - MPI h5py
import h5py
from hmmpar.apps import app_class
from hmmpar.core.config import load_config
from hmmpar.core.preflight import prepare
from hmmpar.core.errors import CheckpointError, ConfigError
from hmmpar.core.runner import run
from hmmpar.io import inputs
from hmmpar.io.inputs import LIMITS, parse_voxels, read_file, resolve_path
from hmmpar.micro.cells.coefficients import Sine, UserFunction

ROOT = Path(__file__).resolve().parents[2]
MESH = ROOT / "tests" / "data" / "square.msh"
MODEL = ROOT / "drivers" / "configs" / "models" / "heat_shock.toml"
COMM = MPI.COMM_SELF

ELLIPTIC = """[run]
app = "elliptic"
output_dir = "out"
progress_interval = 0.0
[macro]
cells = [2, 2]
[coefficient]
kind = "{kind}"
{coefficient}
[micro]
eps = 0.01
n = 4
batches = 2
[checkpoint]
every_steps = 1
[output]
plots = false
"""

SSA = """[run]
app = "ssa"
output_dir = "out"
progress_interval = 0.0
[model]
file = "{model}"
[ensemble]
method = "direct"
trajectories = 2
t_end = 0.001
samples = 2
[checkpoint]
every_steps = 1
[output]
plots = false
"""

USER_MODULE = """
import numpy as np
from numpy import sin

def a(x, y):
    return 2.0 + np.sin(2 * np.pi * y[0])

class Klass:
    pass
"""


@contextmanager
def deadline(seconds: int = 10):
    """Fail (instead of hanging the suite) if the block blocks for ``seconds``."""
    def expire(signum, frame):
        raise TimeoutError(f"blocked for {seconds} s")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def elliptic_config(d: Path, kind: str, coefficient: str, name: str = "ell.toml") -> Path:
    return write(d / name, ELLIPTIC.format(kind=kind, coefficient=coefficient))


def check(cfg_path: Path, *overrides: str):
    """``hmmpar validate``'s checks, in-process: the config, its input files, the app."""
    cfg = load_config(cfg_path, overrides)
    prepare(cfg, COMM)
    return cfg


def one_line_error(cfg_path: Path, *overrides: str, error=ConfigError) -> str:
    with deadline(), pytest.raises(error) as info:
        check(cfg_path, *overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------- non-regular files
def special_files(d: Path) -> dict[str, Path]:
    fifo = d / "fifo"
    os.mkfifo(fifo)
    (d / "dir").mkdir()
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "sock"))
    return {"a FIFO": fifo, "a directory": d / "dir", "a socket": d / "sock", "a character device": Path("/dev/zero")}


@pytest.mark.parametrize("key,kind,make", [
    ("model.file", "ssa", lambda p: SSA.format(model=p)),
    ("coefficient.file", "elliptic", lambda p: ELLIPTIC.format(kind="voxels", coefficient=f'file = "{p}"')),
    ("macro.mesh", "elliptic", lambda p: ELLIPTIC.format(kind="sine", coefficient="") + f'[macro]\nmesh = "{p}"\n'),
    ("coefficient.function", "elliptic",
     lambda p: ELLIPTIC.format(kind="function", coefficient=f'function = "{p}.py:a"')),
])
def test_non_regular_input_files_are_refused_without_blocking(tmp_path, key, kind, make):
    """A FIFO, a directory, a socket, a device named by each input key: exit-2 message
    naming the key and the file, within the alarm (a FIFO read would block forever)."""
    for what, path in special_files(tmp_path).items():
        if key == "coefficient.function":  # the .py file itself is the special file
            target = Path(f"{tmp_path / 'special'}.py")
            target.unlink(missing_ok=True)
            target.symlink_to(path)
            path = tmp_path / "special"
        text = make(path)
        if key == "macro.mesh":  # [macro] twice is not TOML: put mesh into the first one
            text = ELLIPTIC.format(kind="sine", coefficient="").replace("[macro]\n", f'[macro]\nmesh = "{path}"\n')
        cfg = write(tmp_path / "c.toml", text)
        shown = f"{path}.py" if key == "coefficient.function" else str(path)
        assert one_line_error(cfg) == f"config key {key}: {shown} is {what}, not a regular file"


def test_fifo_config_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "c.toml")
    with deadline(), pytest.raises(ConfigError) as info:
        load_config(tmp_path / "c.toml")
    assert str(info.value) == f"config file: {tmp_path / 'c.toml'} is a FIFO, not a regular file"


def test_fifo_swapped_in_after_the_stat_does_not_block(tmp_path, monkeypatch):
    """The race: the path is a regular file at the stat and a FIFO at the open. The open
    is non-blocking and fstat of the opened file refuses it."""
    fifo, regular = tmp_path / "fifo", write(tmp_path / "model.toml", "x = 1\n")
    os.mkfifo(fifo)
    real_open = os.open
    monkeypatch.setattr(inputs.os, "open", lambda path, flags, *a: real_open(fifo, flags, *a))
    with deadline(), pytest.raises(ConfigError, match=r"model\.toml is a FIFO, not a regular file$"):
        read_file(regular, "model", "config key model.file")


def test_size_is_bounded_per_kind(tmp_path, monkeypatch):
    big = write(tmp_path / "m.toml", "#" * 2000 + "\n")
    monkeypatch.setitem(LIMITS, "model", 1000)
    with pytest.raises(ConfigError) as info:
        read_file(big, "model", "config key model.file")
    assert str(info.value) == f"config key model.file: {big} is larger than the 1000 B allowed for a model file"
    monkeypatch.setitem(LIMITS, "model", 2001)
    assert len(read_file(big, "model", "config key model.file")) == 2001


# ---------------------------------------------------------------------- bad content
def _npy(path: Path, array) -> str:
    np.save(path, array, allow_pickle=True)
    return str(path)


def voxel_cases(d: Path) -> dict[str, tuple[str, str]]:
    """name -> (coefficient lines, expected message after 'config key coefficient.file: <file>')."""
    (d / "text.h5").write_text("not hdf5\n")
    (d / "empty.npy").write_bytes(b"")
    (d / "trunc.npy").write_bytes(b"\x93NUMPY\x01\x00v\x00{'descr': '<f8'")
    (d / "short.npy").write_bytes(Path(_npy(d / "full.npy", np.ones((4, 4)))).read_bytes()[:-8])
    _npy(d / "pickled.npy", np.array([{"a": 1}, None], dtype=object))
    _npy(d / "oned.npy", np.ones(5))
    _npy(d / "fourd.npy", np.ones((2, 2, 2, 2)))
    _npy(d / "complex.npy", np.ones((2, 2), dtype=complex))
    _npy(d / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    _npy(d / "nan.npy", np.array([[1.0, np.nan], [1.0, 1.0]]))
    _npy(d / "negative.npy", np.array([[1.0, -2.0], [1.0, 1.0]]))
    _npy(d / "threed.npy", np.ones((2, 2, 2)))
    with h5py.File(d / "img.h5", "w") as f:
        f["a"] = np.ones((4, 4))
        f.create_group("g")
    return {
        "not_hdf5": ('file = "text.h5"\ndataset = "a"', "text.h5 is not an HDF5 file (voxel images are .npy "
                     "files or HDF5 files with coefficient.dataset)"),
        "empty_npy": ('file = "empty.npy"', "empty.npy is not a .npy file (it is empty)"),
        "truncated_header": ('file = "trunc.npy"', "trunc.npy is not a valid .npy file: EOF: reading array header"),
        "truncated_data": ('file = "short.npy"', "short.npy is not a valid .npy file"),
        "pickled_npy": ('file = "pickled.npy"', "pickled.npy holds Python objects (pickled data), not a numeric "
                        "array; save the image with numpy.save of a float array"),
        "1d": ('file = "oned.npy"', "oned.npy is a 1D array of shape (5,); a voxel image is 2D or 3D"),
        "4d": ('file = "fourd.npy"', "fourd.npy is a 4D array of shape (2, 2, 2, 2); a voxel image is 2D or 3D"),
        "complex": ('file = "complex.npy"', "complex.npy has dtype complex128, not a real number type"),
        "strings": ('file = "strings.npy"', "strings.npy has dtype <U1, not a real number type"),
        "nan": ('file = "nan.npy"', "nan.npy: 1 voxel value(s) are NaN or infinite (first at index (0, 1))"),
        "negative": ('file = "negative.npy"', "negative.npy: voxel values must be positive, got -2 at index (0, 1)"),
        "missing_dataset": ('file = "img.h5"\ndataset = "b"', "img.h5 has no dataset 'b' (datasets: a)"),
        "group_dataset": ('file = "img.h5"\ndataset = "g"', "img.h5, dataset 'g' is a group, not a dataset"),
    }


def test_bad_voxel_files_are_one_line_errors_naming_key_and_file(tmp_path):
    for name, (lines, expected) in voxel_cases(tmp_path).items():
        message = one_line_error(elliptic_config(tmp_path, "voxels", lines))
        assert message.startswith(f"config key coefficient.file: {tmp_path}/{expected}"), (name, message)
    # the good ones: an HDF5 dataset, a Fortran-ordered .npy, integers converted
    k = "coefficient.file"
    assert np.array_equal(parse_voxels(read_file(tmp_path / "img.h5", "voxels", k), k, "img.h5", "a"), np.ones((4, 4)))
    grid = np.arange(1.0, 13.0).reshape(3, 4)
    np.save(tmp_path / "f.npy", np.asfortranarray(grid))
    np.save(tmp_path / "i.npy", grid.astype(np.int16))
    for name in ("f.npy", "i.npy"):
        got = parse_voxels(read_file(tmp_path / name, "voxels", k), k, name)
        assert got.dtype == np.float64 and np.array_equal(got, grid)


def test_check_restart_compares_content_not_path():
    class Cfg:
        inputs = {"model.file": {"path": "/b/m.toml", "bytes": 3, "sha256": "aa"}}
    same_content_moved = '{"model.file": {"path": "/a/m.toml", "bytes": 3, "sha256": "aa"}}'
    inputs.check_restart(Cfg, same_content_moved, "ck.h5")
    with pytest.raises(CheckpointError) as info:
        inputs.check_restart(Cfg, same_content_moved.replace("aa", "bb"), "ck.h5")
    assert str(info.value) == ("config key model.file: the content of /b/m.toml changed since checkpoint ck.h5 "
                               "was written (then /a/m.toml); restore the file or start a fresh run")
    with pytest.raises(CheckpointError, match=r"^checkpoint ck.h5 was written without an input file for config "
                                              r"key model.file; this run reads /b/m.toml$"):
        inputs.check_restart(Cfg, "{}", "ck.h5")
    with pytest.raises(CheckpointError, match=r"does not record its input files \(written by an older hmmpar\)"):
        inputs.check_restart(Cfg, None, "ck.h5")
    Cfg.inputs = {}
    with pytest.raises(CheckpointError, match=r"written with input file /a/m.toml \(config key model.file\); "
                                              "this run does not read it"):
        inputs.check_restart(Cfg, same_content_moved, "ck.h5")
    inputs.check_restart(Cfg, None, "ck.h5")  # an old checkpoint of a run without input files


def test_voxel_image_of_the_wrong_dimension_is_refused_before_micro_work(tmp_path):
    voxel_cases(tmp_path)
    cfg = load_config(elliptic_config(tmp_path, "voxels", 'file = "threed.npy"'))
    with pytest.raises(ConfigError) as info:
        app_class("elliptic")(cfg, COMM, None)
    assert str(info.value) == f"config key coefficient.file: {tmp_path}/threed.npy is a 3D image, the problem is 2D"


def test_garbage_mesh_and_binary_model_are_one_line_errors(tmp_path):
    (tmp_path / "junk.msh").write_bytes(os.urandom(3000))
    cfg = write(tmp_path / "m.toml", ELLIPTIC.format(kind="sine", coefficient="").replace(
        "[macro]\n", '[macro]\nmesh = "junk.msh"\n'))
    assert one_line_error(cfg).startswith(f"config key macro.mesh: cannot read mesh file {tmp_path}/junk.msh")
    (tmp_path / "model.bin").write_bytes(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)))
    cfg = write(tmp_path / "s.toml", SSA.format(model="model.bin"))
    assert one_line_error(cfg) == f"config key model.file: {tmp_path}/model.bin is a binary file, not text"
    (tmp_path / "latin1.toml").write_bytes("name = \"caf\xe9\"\n".encode("latin-1"))
    cfg = write(tmp_path / "s.toml", SSA.format(model="latin1.toml"))
    assert one_line_error(cfg) == f"config key model.file: {tmp_path}/latin1.toml is not UTF-8 text (byte 11)"


def test_missing_input_files_are_named(tmp_path):
    assert one_line_error(elliptic_config(tmp_path, "voxels", 'file = "nope.npy"')) == \
        f"config key coefficient.file: cannot read {tmp_path}/nope.npy: no such file"
    assert one_line_error(write(tmp_path / "s.toml", SSA.format(model="nope.toml"))) == \
        f"config key model.file: cannot read {tmp_path}/nope.toml: no such file"


# ---------------------------------------------------------------------- user code
def test_user_function_from_a_file_next_to_the_config(tmp_path):
    """``file.py:function`` is relative to the config file and gives the same cell
    problem as the built-in coefficient it codes."""
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "mycoef.py", USER_MODULE)
    cfg = load_config(elliptic_config(tmp_path / "conf", "function", 'function = "mycoef.py:a"\n'
                                      "depends_on_x = false"))
    assert cfg["coefficient.function"] == f"{tmp_path}/conf/mycoef.py:a"
    app = app_class("elliptic")(cfg, COMM, None)
    x = np.random.default_rng(1).random((50, 2))
    np.testing.assert_array_equal(app.coefficient.values(x, x), Sine().values(x, x))
    assert cfg.inputs["coefficient.function"]["path"] == f"{tmp_path}/conf/mycoef.py"


@pytest.mark.parametrize("spec,message", [
    ("os:system", "'os:system' is a built-in function, not a Python function defined in the module"),
    ("os:makedirs", "'os:makedirs': os is part of Python's standard library, not user code"),
    ("math:sqrt", "'math:sqrt' is a built-in function, not a Python function defined in the module"),
    ("builtins:eval", "'builtins:eval' is a built-in function, not a Python function defined in the module"),
    ("os:environ", "'os:environ' is a _Environ, not a Python function defined in the module"),
    ("mycoef.py:Klass", "'{d}/mycoef.py:Klass' is a class, not a Python function defined in the module"),
    ("mycoef.py:sin", "'{d}/mycoef.py:sin' is a ufunc, not a Python function defined in the module"),
    ("mycoef.py:np", "'{d}/mycoef.py:np' is a module, not a Python function defined in the module"),
    ("mycoef.py:nothing", "'{d}/mycoef.py:nothing': hmmpar_user_mycoef_"),
    ("mycoef:a", "cannot import module 'mycoef'"),
    ("os;system", "'os;system' must be 'module:function' or 'file.py:function'"),
    ("a b:c", "'a b:c': 'a b' is not a module name (or a .py file)"),
])
def test_user_code_that_is_not_a_plain_function_of_the_module_is_refused(tmp_path, monkeypatch, spec, message):
    write(tmp_path / "mycoef.py", USER_MODULE)
    monkeypatch.chdir(tmp_path)  # the working directory is not on the import path
    got = one_line_error(elliptic_config(tmp_path, "function", f'function = "{spec}"'))
    assert got.startswith("config key coefficient.function")
    assert message.format(d=tmp_path) in got, got


def test_no_user_code_refuses_the_key(tmp_path):
    cfg = elliptic_config(tmp_path, "function", 'function = "mycoef.py:a"')
    with pytest.raises(ConfigError) as info:
        load_config(cfg, allow_user_code=False)
    assert str(info.value) == (f'config key coefficient.function = "{tmp_path}/mycoef.py:a" runs user code '
                               "(imports a Python module); refused by --no-user-code")
    assert load_config(elliptic_config(tmp_path, "sine", ""), allow_user_code=False)["coefficient.kind"] == "sine"


def test_library_user_function_applies_the_same_rules():
    with pytest.raises(ConfigError, match="is a built-in function"):
        UserFunction("os:system")


# ---------------------------------------------------------------------- paths
def test_one_path_rule(tmp_path, monkeypatch):
    """Inputs written in the config: relative to its directory; outputs and --set: to
    the working directory; ~ expanded everywhere; the config holds absolute paths."""
    conf, work, home = tmp_path / "conf", tmp_path / "work", tmp_path / "home"
    for d in (conf, work, home):
        d.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    cfg = load_config(write(conf / "s.toml", SSA.format(model="m.toml")))
    assert cfg["model.file"] == str(conf / "m.toml")
    assert cfg["run.output_dir"] == str(work / "out")
    cfg = load_config(conf / "s.toml", ["model.file=x/m.toml", "run.output_dir=~/o", "checkpoint.directory=~/ck"])
    assert cfg["model.file"] == str(work / "x" / "m.toml")
    assert (cfg["run.output_dir"], cfg["checkpoint.directory"]) == (str(home / "o"), str(home / "ck"))
    cfg = load_config(conf / "s.toml", ['model.file="~/m.toml"'])
    assert cfg["model.file"] == str(home / "m.toml")
    assert resolve_path("~", None) == str(home) and resolve_path("", conf) == ""
    assert resolve_path("a/../b", conf) == str(conf / "b")


def test_output_dir_tilde_is_home_not_a_literal_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    shutil.copy(MODEL, tmp_path / "m.toml")
    cfg = load_config(write(tmp_path / "s.toml", SSA.format(model="m.toml")), ["run.output_dir=~/x"])
    run(cfg, COMM)
    assert (tmp_path / "home" / "x" / "summary.json").is_file()
    assert not (tmp_path / "~").exists()


# ---------------------------------------------------------------------- restarts
def _change(path: Path) -> None:
    if path.suffix == ".npy":
        np.save(path, np.load(path) * 2)
    elif path.suffix == ".msh":  # move interior node 4 a little: a valid mesh, another answer
        text = path.read_text()
        path.write_text(text.replace("\n4 0.6763813930383298 0.5146606255672462 0.0\n",
                                     "\n4 0.67 0.51 0.0\n", 1))
    else:
        path.write_text(path.read_text() + "\n# changed\n")


RESTART_CASES = {
    "coefficient.file": ("img.npy", lambda d: ELLIPTIC.format(kind="voxels", coefficient='file = "img.npy"')),
    "macro.mesh": ("square.msh", lambda d: ELLIPTIC.format(kind="sine", coefficient="").replace(
        "[macro]\n", '[problem]\ndirichlet = ["left", "right", "bottom", "top"]\n[macro]\nmesh = "square.msh"\n')),
    "model.file": ("m.toml", lambda d: SSA.format(model="m.toml")),
    "coefficient.function": ("ucoef.py", lambda d: ELLIPTIC.format(
        kind="function", coefficient='function = "ucoef.py:a"\ndepends_on_x = false')),
}


@pytest.mark.parametrize("key", sorted(RESTART_CASES))
def test_restart_refuses_changed_input_content_and_accepts_unchanged(tmp_path, monkeypatch, key):
    """A run checkpoints; a restart with the same files (also after the files moved, from
    another working directory) works; after the file's content changed it is refused
    naming the key and the file."""
    name, text = RESTART_CASES[key]
    conf = tmp_path / "conf"
    conf.mkdir()
    if name == "img.npy":
        np.save(conf / name, np.array([[1.0, 10.0], [10.0, 1.0]]))
    elif name == "square.msh":
        shutil.copy(MESH, conf / name)
    elif name == "m.toml":
        shutil.copy(MODEL, conf / name)
    else:
        write(conf / name, USER_MODULE.replace("ucoef", "x"))
    monkeypatch.chdir(tmp_path)
    cfg_path = write(conf / "c.toml", text(conf))
    first = load_config(cfg_path)
    run(first, COMM)
    ck = tmp_path / "out" / "checkpoints"
    assert sorted(p.name for p in ck.glob("ckpt_*.h5"))
    # unchanged, from another working directory, with the stored run_config.toml
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    stored = load_config(tmp_path / "out" / "run_config.toml")
    assert stored[key].split(":")[0] == str(conf / name)
    assert run(stored, COMM, restart="latest") is not None
    _change(conf / name)
    with pytest.raises(CheckpointError) as info:
        run(load_config(cfg_path, [f"run.output_dir={tmp_path / 'out'}"]), COMM, restart="latest")
    assert str(info.value) == (f"config key {key}: the content of {conf / name} changed since checkpoint "
                               f"{sorted(ck.glob('ckpt_*.h5'))[-1]} was written; restore the file or start "
                               "a fresh run")


def test_gather_refuses_a_fifo_summary_without_blocking(tmp_path):
    from hmmpar.gather import read_run
    os.mkfifo(tmp_path / "summary.json")
    with deadline(), pytest.raises(ConfigError) as info:
        read_run(tmp_path, [])
    assert str(info.value) == f"gather: {tmp_path / 'summary.json'} is a FIFO, not a regular file"

"""The package as a user gets it: a wheel in a fresh venv, console scripts, completion, config layering.

The wheel test builds the real wheel, installs it (no deps) into a fresh venv that borrows this
environment's third-party packages through a .pth line (torch etc. are not downloaded again; the editable
install of this checkout is not seen: .pth files inside a borrowed folder are not processed), then trains
from an empty folder with the bundled config tree and sample data.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest
import yaml

from patchtst_hpo.config import ARCH_NAMES
from patchtst_hpo.paths import REPO_DIR
from tests.helpers import check, run_cli

TINY = [
    "budget=tiny",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "callbacks.progress=null",
]


def _clean_env(**extra: str) -> dict[str, str]:
    """This environment without PYTHONPATH (which points at the checkout) and without a data home."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PATCHTST_HPO_HOME")}
    return {**env, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **extra}


def _run(args: list, cwd: Path, env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict:
    """A fresh venv with the wheel of this checkout installed; returns its bin folder and the wheel."""
    tmp = tmp_path_factory.mktemp("pkg")
    env = _clean_env()
    # Built from a copy of the working tree: no stale build/ or egg-info can hide a packaging bug, and the
    # checkout is not written to.
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "processed", "*.lock")
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(REPO_DIR / name, src / name)
    for name in ("patchtst_hpo", "hydra_plugins", "conf", "data"):
        shutil.copytree(REPO_DIR / name, src / name, ignore=skip)
    check(_run([sys.executable, "-m", "pip", "wheel", src, "--no-deps", "--no-build-isolation", "-q", "-w", tmp / "dist"],
               tmp, env))  # fmt: skip
    wheel = next((tmp / "dist").glob("patchtst_hpo-*.whl"))
    venv = tmp / "venv"
    check(_run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, env))
    py = venv / "bin" / "python"
    site = Path(
        _run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp, env).stdout.strip()
    )
    (site / "_borrowed_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    check(_run([sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "-q", wheel], tmp, env))
    return {
        "bin": venv / "bin",
        "py": py,
        "wheel": wheel,
        "env": _clean_env(PATH=f"{venv / 'bin'}:{os.environ['PATH']}"),
    }


def _editable() -> dict:
    """This environment as `make install` leaves it (the checkout installed in editable mode), run from outside."""
    bin_dir = Path(sys.executable).parent
    return {
        "bin": bin_dir,
        "py": Path(sys.executable),
        "env": _clean_env(PATH=f"{bin_dir}:{os.environ['PATH']}"),
    }


@pytest.fixture(params=["editable", "wheel"])
def install(request) -> dict:
    """Both installs a user can have: `make install` (editable) and the wheel in a fresh venv."""
    return _editable() if request.param == "editable" else request.getfixturevalue("installed")


def _foreign_app(dst: Path) -> Path:
    """Upstream's sphere example as someone else's app: its own folder, nothing of this checkout beside it."""
    shutil.copy2(REPO_DIR / "tests" / "apps" / "sphere.py", dst / "sphere.py")
    shutil.copytree(REPO_DIR / "tests" / "apps" / "sphere_conf", dst / "sphere_conf")
    return dst / "sphere.py"


PLUGIN_FILE = "import hydra_plugins.patchtst_hpo_sweeper.budget_optuna as m; print(m.__file__)"


def test_foreign_app_selects_the_sweeper_from_its_own_folder(install, tmp_path):
    """`hydra/sweeper: budget_optuna` in a stranger's app, run from its folder with nothing on PYTHONPATH:
    Hydra's plugin scan must find the sweeper in the install itself (an editable install once hid it)."""
    app = _foreign_app(tmp_path)
    where = _run([install["py"], "-c", PLUGIN_FILE], tmp_path, install["env"])
    check(where)
    expected = REPO_DIR if install["py"] == Path(sys.executable) else install["bin"].parent
    assert Path(where.stdout.strip()).is_relative_to(expected), where.stdout  # this install's copy
    r = _run([install["py"], app, "-m", "hydra.sweeper.n_trials=3", "hydra.sweep.dir=sweep"], tmp_path,
             install["env"], timeout=120)  # fmt: skip
    check(r)
    res = yaml.safe_load((tmp_path / "sweep" / "optimization_results.yaml").read_text())
    assert res["trials"]["COMPLETE"] == 3 and res["best_value"] >= 0


def _pyproject_scripts() -> dict[str, str]:
    """pyproject's [project.scripts] table (tomllib is 3.11+; the project supports 3.10)."""
    table = (REPO_DIR / "pyproject.toml").read_text().split("[project.scripts]\n", 1)[1].split("\n[", 1)[0]
    rows = [line.split("=", 1) for line in table.splitlines() if "=" in line and not line.startswith("#")]
    return {k.strip(): v.strip().strip('"') for k, v in rows}


# Each console script: its --help, then a small real call (arguments, what its output must show).
SCRIPT_CALLS = {
    "patchtst-train": ([*TINY, "hydra.run.dir=run"], "val/auc = "),
    "patchtst-report": (["storage=sqlite:///empty.db", "hydra.run.dir=report"], "no study named patchtst.*"),
    "patchtst-data": (["list"], "SPX.OHLCV.daily"),
    "patchtst-bench": (["bench=smoke", "sections=[]", "hydra.run.dir=bench"], ""),
    "patchtst-candidates": (["budget=tiny"], "extremes (enqueued first): "),
}


def test_console_scripts_load_and_compose_from_an_empty_folder(tmp_path):
    """The fast check of the slow test below: every entry point of the installed metadata loads (a wrong
    `module:function` once broke patchtst-bench in every install) and a composing script runs from a folder
    of its own (patchtst-candidates once lacked the sweeper's presets there)."""
    scripts = _pyproject_scripts()
    load = (  # in a folder of its own: a stale egg-info in the checkout cannot answer for the install
        "import json; from importlib.metadata import entry_points as e; "
        "eps = [p for p in e(group='console_scripts') if p.name.startswith('patchtst-')]; "
        "assert all(callable(p.load()) for p in eps); print(json.dumps({p.name: p.value for p in eps}))"
    )
    r = _run([sys.executable, "-c", load], tmp_path, _editable()["env"])
    check(r)
    assert json.loads(r.stdout) == scripts  # the install matches pyproject, and each one loads
    r = _run([_editable()["bin"] / "patchtst-candidates", "budget=tiny"], tmp_path, _editable()["env"])
    check(r)
    assert "extremes (enqueued first): " in r.stdout


@pytest.mark.slow
@pytest.mark.parametrize("install", ["editable", "wheel"], indirect=True)
def test_every_console_script_runs_from_an_empty_folder(install, tmp_path):
    """Every script of pyproject's [project.scripts], from a folder holding nothing of the checkout: `--help`
    and a tiny real call (the report's on an empty storage is its one-line refusal, exit 2)."""
    scripts = _pyproject_scripts()
    assert set(scripts) == set(SCRIPT_CALLS)
    env = {**install["env"], "PATCHTST_HPO_HOME": str(tmp_path / "home")}
    for name, (args, shows) in SCRIPT_CALLS.items():
        exe = install["bin"] / name
        r = _run([exe, "--help"], tmp_path, env)
        check(r)
        assert len(r.stdout.splitlines()) > 3, (name, r.stdout)
        r = _run([exe, *args], tmp_path, env, timeout=300)
        out = r.stdout + r.stderr
        assert r.returncode == (2 if name == "patchtst-report" else 0), (name, out[-3000:])
        assert shows in out, (name, out[-3000:])
    m = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert m["budget"] == "tiny" and m["epochs"] == 1
    assert json.loads((tmp_path / "bench" / "results.json").read_text())["matmul_gflops"] > 0


def test_wheel_ships_conf_and_sample_but_no_personal_overrides(installed):
    names = set(zipfile.ZipFile(installed["wheel"]).namelist())
    conf = {p.relative_to(REPO_DIR / "conf").as_posix() for p in (REPO_DIR / "conf").rglob("*.yaml")}
    shipped = {n.removeprefix("patchtst_hpo/conf/") for n in names if n.startswith("patchtst_hpo/conf/")}
    assert shipped == {c for c in conf if not c.startswith("local/")}
    code = {
        p.relative_to(REPO_DIR).as_posix()
        for d in ("patchtst_hpo", "hydra_plugins")
        for p in (REPO_DIR / d).rglob("*.py")
    }
    assert code <= names, code - names  # a new subpackage cannot be left out
    assert {
        "patchtst_hpo/sample_data/raw/manifest.json",
        "patchtst_hpo/sample_data/raw/SPX.OHLCV.daily/v1.parquet",
    } <= names


@pytest.mark.slow
def test_wheel_trains_from_an_empty_folder(installed, tmp_path):
    """`patchtst-train` and `python -m patchtst_hpo.train` from a folder holding nothing: the bundled conf and
    sample; data and outputs land in that folder (or PATCHTST_HPO_HOME), never in site-packages."""
    env, py = installed["env"], installed["py"]
    where = _run([py, "-c", "import patchtst_hpo.paths as p; print(p.INSTALLED, p.CONF_DIR)"], tmp_path, env)
    assert where.stdout.split()[0] == "True" and "site-packages" in where.stdout, where.stdout + where.stderr
    t0 = time.perf_counter()
    work = tmp_path / "work"
    work.mkdir()
    r = _run([installed["bin"] / "patchtst-train", *TINY, "hydra.run.dir=run1"], work, env)
    check(r)
    m = json.loads((work / "run1" / "metrics.json").read_text())
    assert m["budget"] == "tiny" and m["epochs"] == 1 and 0 <= m["val"]["auc"] <= 1
    assert (work / "data" / "raw" / "manifest.json").exists() and (work / "data" / "processed").is_dir()
    home = tmp_path / "home"
    r = _run([py, "-m", "patchtst_hpo.train", *TINY], tmp_path, {**env, "PATCHTST_HPO_HOME": str(home)})
    check(r)
    assert len(list((home / "outputs" / "runs").glob("*/metrics.json"))) == 1
    assert (home / "data" / "processed" / "manifest.json").exists()
    r = _run([installed["bin"] / "patchtst-data", "list"], work, env)
    check(r)
    assert "SPX.OHLCV.daily" in r.stdout
    for module in ("patchtst_hpo.report", "patchtst_hpo.bench", "patchtst_hpo.candidates"):
        check(_run([py, "-m", module, "--help"], tmp_path, env))
    print(f"wheel: two tiny trainings and the CLIs from an empty folder in {time.perf_counter() - t0:.0f} s")


@pytest.mark.slow
def test_console_script_completes_config_groups(installed, tmp_path):
    """Hydra's bash completion, as the installed `eval "$(patchtst-train -sc install=bash)"` runs it."""
    env, exe = installed["env"], installed["bin"] / "patchtst-train"
    script = _run([exe, "-sc", "install=bash"], tmp_path, env)
    check(script)
    assert "complete -o nospace -o default -F hydra_bash_completion patchtst-train" in script.stdout
    line = "patchtst-train budget="
    bash = f'{script.stdout}\nCOMP_LINE="{line}"; COMP_POINT={len(line)}; COMP_CWORD=1\nhydra_bash_completion\necho "${{COMPREPLY[@]}}"'
    r = _run(["bash", "-c", bash], tmp_path, env)
    check(r)
    assert set(r.stdout.split()) >= {f"budget={b}" for b in ("tiny", "2M", "20M", "200M", "2B")}, (
        r.stdout + r.stderr
    )
    r = _run([exe, "-sc", "query=bash"], tmp_path, {**env, "COMP_LINE": "patchtst-train arch=d64_l2_h"})
    check(r)
    assert "arch=d64_l2_h4_f256" in r.stdout.split()


def test_user_config_dir_layers_on_with_searchpath(tmp_path):
    """A user's own config folder adds options and experiments; the bundled conf/ keeps the defaults (a file
    of the same name as a bundled one is shadowed by it: change bundled values with an experiment)."""
    mine = tmp_path / "myconf"
    (mine / "budget").mkdir(parents=True)
    (mine / "experiment").mkdir()
    tiny = (REPO_DIR / "conf" / "budget" / "tiny.yaml").read_text()
    (mine / "budget" / "mine.yaml").write_text(tiny.replace("name: tiny", "name: mine"))
    (mine / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /budget: mine\nseed: 7\n"
    )
    r = run_cli(["-m", "patchtst_hpo.train", f"hydra.searchpath=[file://{mine}]", "experiment=mine", "--cfg", "job"],
                cwd=tmp_path)  # fmt: skip
    check(r)
    assert (
        "  name: mine\n" in r.stdout and "\nseed: 7\n" in r.stdout and "  name: d64_l2_h4_f256\n" in r.stdout
    )


@pytest.mark.parametrize("flag", ["--help", pytest.param("--hydra-help", marks=pytest.mark.slow)])
def test_help_lists_every_arch(flag):
    """One entry per architecture (every grid's points and `auto`); listing them took a minute before the arch
    group was shared."""
    r = run_cli(["-m", "patchtst_hpo.train", flag])
    check(r)
    if flag == "--hydra-help":
        assert "hydra/sweeper: basic, budget_optuna" in r.stdout
        return
    listed = r.stdout.split("arch: ")[1].split("\n")[0].split(", ")
    assert len(listed) == len(ARCH_NAMES) + 1 and len(ARCH_NAMES) > 1000
    assert {"auto", "d64_l2_h2_f128", "d1024_l24_h16_f4096", "d4_l1_h1_f8"} <= set(listed)


def _warn_from(module: str) -> None:
    exec(
        compile("import warnings; warnings.warn('old API', DeprecationWarning)", module, "exec"),
        {"__name__": module},
    )


def test_deprecations_from_our_code_fail_the_suite_and_third_party_ones_do_not():
    with pytest.raises(DeprecationWarning):
        _warn_from("patchtst_hpo.train")
    _warn_from("lightning.pytorch.trainer")  # ignored by pyproject's filterwarnings

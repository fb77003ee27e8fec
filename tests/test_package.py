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

"""Real storages and a real SLURM for tests: a throwaway PostgreSQL cluster and a one-node SLURM cluster.

Both need Debian packages (`.ci/run` installs them: postgresql, slurm-wlm, munge). Where the binaries are
missing the tests skip with the reason, except in CI (`CI=true`), where a missing binary is a failure.
Loaded from tests/conftest.py (`pytest_plugins`).
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_USER = "optuna"


def _missing(what: str) -> None:
    msg = f"{what} (apt-get install postgresql slurm-wlm munge, as .ci/run does)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI must have {msg}")
    pytest.skip(f"not installed here: {msg}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_owner(cmd: list[str], user: str | None) -> list[str]:
    """initdb and postgres refuse to run as root: run them as the `postgres` system user then."""
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


class Postgres:
    """A running cluster on 127.0.0.1 with a password user; `url(db)` creates nothing, `new_db()` does."""

    def __init__(self, host: str, port: int, password: str) -> None:
        self.host, self.port, self.password = host, port, password
        self.n_dbs = 0

    def url(self, db: str, with_password: bool = True) -> str:
        auth = f"{PG_USER}:{self.password}" if with_password else PG_USER
        return f"postgresql://{auth}@{self.host}:{self.port}/{db}"

    def new_db(self) -> str:
        """A fresh empty database (one per test, so studies never mix); returns its URL with password."""
        import psycopg

        self.n_dbs += 1
        name = f"t{self.n_dbs}_{secrets.token_hex(3)}"
        dsn = f"host={self.host} port={self.port} user={PG_USER} password={self.password} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        _missing("PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb)")
    bindir = Path(bins[-1]).parent
    user = "postgres" if os.geteuid() == 0 else None
    root = Path(tempfile.mkdtemp(prefix="pgtest-"))  # not under pytest's 0700 tmp: the postgres user reads it
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    password = "pw-" + secrets.token_hex(8)
    (root / "pw").write_text(password)
    if user:
        shutil.chown(root, user)
        shutil.chown(sock, user)
        shutil.chown(root / "pw", user)
    run = lambda cmd: subprocess.run(_as_owner(cmd, user), check=True, capture_output=True, text=True)  # noqa: E731
    run(
        [str(bindir / "initdb"), "-D", str(data), "-U", PG_USER, f"--pwfile={root / 'pw'}"]
        + ["--auth=scram-sha-256", "-E", "UTF8", "--no-sync"]
    )
    port = _free_port()
    opts = f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    run([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "start"])
    try:
        yield Postgres("127.0.0.1", port, password)
    finally:
        subprocess.run(
            _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], user),
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    """The URL (with password) of a fresh database on the session's PostgreSQL cluster."""
    return postgres.new_db()


# ---- SLURM ----

SLURM_CONF = """\
ClusterName=test
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=30
NodeName={host} CPUs={cpus} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


class Slurm:
    def __init__(self, conf: Path, partition: str) -> None:
        self.conf, self.partition = conf, partition

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}


def _munge_running() -> bool:
    return subprocess.run(["munge", "-n"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def slurm() -> Iterator[Slurm]:
    """A one-node SLURM cluster on this machine (slurmctld + slurmd as root, munge auth), `sinfo` idle."""
    need = ["munged", "munge", "slurmctld", "slurmd", "sinfo", "sbatch"]
    missing = [b for b in need if shutil.which(b) is None]
    if missing:
        _missing(f"SLURM/munge binaries {missing}")
    if os.geteuid() != 0:
        _missing("root, to run slurmctld/slurmd as SlurmUser=root")
    started: list[str] = []
    if not _munge_running():
        if not Path("/etc/munge/munge.key").exists():
            subprocess.run(["mungekey", "--create"], check=True, capture_output=True)
        Path("/run/munge").mkdir(parents=True, exist_ok=True)
        shutil.chown("/run/munge", "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True, capture_output=True)
        started.append("munged")
        for _ in range(50):
            if _munge_running():
                break
            time.sleep(0.1)
    root = Path(tempfile.mkdtemp(prefix="slurmtest-"))
    (root / "state").mkdir()
    (root / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    conf = root / "slurm.conf"
    conf.write_text(
        SLURM_CONF.format(
            host=host,
            root=root,
            cpus=os.cpu_count() or 2,
            mem=1000,
            ctld_port=_free_port(),
            d_port=_free_port(),
        )
    )
    env = {**os.environ, "SLURM_CONF": str(conf)}
    subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env, capture_output=True)
    subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env, capture_output=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True).stdout
            if out.strip() == "idle":
                break
            time.sleep(0.5)
        else:
            log = (root / "slurmctld.log").read_text()[-2000:] + (root / "slurmd.log").read_text()[-2000:]
            pytest.fail(f"the test SLURM node never became idle (sinfo: {out.strip()!r}):\n{log}")
        yield Slurm(conf, "debug")
    finally:
        subprocess.run(["scancel", "--full", "-u", "root"], env=env, capture_output=True)
        for pidfile in ("slurmd.pid", "slurmctld.pid"):
            p = root / pidfile
            if p.exists():
                try:
                    os.kill(int(p.read_text().split()[0]), 15)
                except (ProcessLookupError, ValueError):
                    pass
        if "munged" in started and Path("/run/munge/munged.pid").exists():
            try:
                os.kill(int(Path("/run/munge/munged.pid").read_text().split()[0]), 15)
            except (ProcessLookupError, ValueError):
                pass
        time.sleep(1)
        shutil.rmtree(root, ignore_errors=True)

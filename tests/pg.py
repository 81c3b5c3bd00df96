"""A throwaway PostgreSQL cluster for tests, started from the local server binaries.

``pg_url`` (session-scoped fixture) runs ``initdb`` in a temporary directory (as the
``postgres`` OS user when the tests run as root), starts the server on a Unix socket in that
directory only (no TCP), creates a database and yields its SQLAlchemy URL; at the end the server
is stopped and the directory deleted. ``fresh_database(pg_url)`` makes one more empty database
(cheap: a copy of template0) so that each test starts from nothing.

The binaries are looked up with ``pg_config --bindir``, then /usr/lib/postgresql/*/bin, then
PATH (override with ONESTOP_PG_BINDIR). Without them the ``postgres`` tests are skipped on a
developer machine but FAIL in CI (env CI set to true/1/yes), so CI never silently skips them.
Set ONESTOP_PG_URL to use an existing server instead (its database is used as is).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

_SETTINGS = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
    "dynamic_shared_memory_type": "mmap",
    "max_wal_size": "256MB",
    "log_min_messages": "warning",
}
_counter = itertools.count()
#: the watcher that stops a server whose test process died without stopping it
REAPER = Path(__file__).with_name("pgreaper.py")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Skip locally; fail in CI."""
    if in_ci():
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


def find_bindir() -> Path | None:
    cands: list[Path] = []
    if os.environ.get("ONESTOP_PG_BINDIR"):
        cands.append(Path(os.environ["ONESTOP_PG_BINDIR"]))
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            )
            cands.append(Path(out.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    cands += sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    initdb = shutil.which("initdb")
    if initdb:
        cands.append(Path(initdb).resolve().parent)
    for d in cands:
        if (d / "initdb").is_file() and (d / "pg_ctl").is_file() and (d / "postgres").is_file():
            return d
    return None


class Cluster:
    """One PostgreSQL server in a temporary directory."""

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="onestop-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 5432  # Unix socket only, in our own directory: no clash with others
        self.as_postgres = os.geteuid() == 0
        self.started = False
        self._reaper: subprocess.Popen[bytes] | None = None

    def _prefix(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if self.as_postgres else []

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [*self._prefix(), str(self.bindir / args[0]), *args[1:]]
        return subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )

    def start(self) -> None:
        if self.as_postgres:
            shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        r = self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust",
            "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions",
        )  # fmt: skip
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{r.stdout}\n{r.stderr}")
        opts = " ".join(f"-c {k}={v}" for k, v in _SETTINGS.items())
        opts += f" -k {self.root} -p {self.port}"
        r = self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "-t", "60",
            "start",
        )  # fmt: skip
        if r.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed:\n{r.stdout}\n{r.stderr}\n{log}")
        self.started = True
        # stops the server if this process dies before ``stop`` (tests/pgreaper.py)
        self._reaper = subprocess.Popen(
            [sys.executable, str(REAPER), str(self.bindir / "pg_ctl"), str(self.data),
             str(self.root), *self._prefix()],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.root}&port={self.port}"

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            reaper, self._reaper = self._reaper, None
            if reaper is not None and reaper.stdin is not None:
                reaper.stdin.close()  # the server is stopped: the reaper ends at once
                reaper.wait(timeout=30)


def create_database(admin_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``admin_url``; its URL."""
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        engine.dispose()
    return sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def fresh_database(pg_url: str) -> str:
    """A new empty database on the test server; its URL."""
    return create_database(pg_url, f"t{os.getpid()}_{next(_counter)}")


_cluster: Cluster | None = None
_cluster_url: str | None = None


def _start() -> str:
    """Start the one test server of this process (again after ``_stop``); its database URL."""
    global _cluster, _cluster_url
    if _cluster_url is not None:
        return _cluster_url
    bindir = find_bindir()
    if bindir is None:
        unavailable("no initdb/pg_ctl/postgres found (pg_config --bindir, /usr/lib/postgresql)")
    assert bindir is not None
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("running as root and runuser is missing (initdb refuses to run as root)")
    cluster = Cluster(bindir)
    try:
        cluster.start()
        url = create_database(cluster.url(), "onestop_test")
    except (
        RuntimeError,
        OSError,
        subprocess.SubprocessError,
        LookupError,
        sa.exc.DBAPIError,
    ) as err:
        cluster.stop()
        unavailable(str(err))
        raise
    _cluster, _cluster_url = cluster, url
    return url


def _stop() -> None:
    global _cluster, _cluster_url
    cluster, _cluster, _cluster_url = _cluster, None, None
    if cluster is not None:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """URL of a database on a throwaway PostgreSQL server (skips locally, fails in CI when
    PostgreSQL cannot be started). One server per test process, however many modules import
    this fixture."""
    given = os.environ.get("ONESTOP_PG_URL")
    if given:
        yield given
        return
    try:
        yield _start()
    finally:
        _stop()


def drop_database(url: str) -> None:
    u = sa.make_url(url)
    engine = sa.create_engine(u.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database per test: a SQLite file, or a new database on the test server
    (dropped afterwards when the server is an outside one, ONESTOP_PG_URL)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'onestop.db'}"
        return
    url = fresh_database(request.getfixturevalue("pg_url"))
    yield url
    if os.environ.get("ONESTOP_PG_URL"):
        drop_database(url)

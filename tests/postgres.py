"""A real, throw-away PostgreSQL server for tests (no mocks): initdb + pg_ctl in a temp folder.

Used by the multi-worker Optuna test. The server listens on a free loopback port with its unix
socket in the same temp folder, trusts local connections (it's a private test cluster bound to
127.0.0.1) and is stopped and deleted by :meth:`PostgresServer.stop`.

PostgreSQL refuses to run as root; when the tests run as root the binaries are started through
``runuser -u postgres --`` and the temp folder is handed to the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

INSTALL_HINT = (
    "PostgreSQL server binaries (initdb, pg_ctl) are not installed: run "
    "`sudo apt-get install -y postgresql` (make test does this when run as root)"
)


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server would not start."""


def find_pg_bin() -> Path:
    """Folder holding ``initdb`` and ``pg_ctl`` (Debian's versioned folder first, then PATH)."""
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(os.path.realpath(initdb)).parent
    raise PostgresUnavailable(INSTALL_HINT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PostgresServer:
    """A running private cluster; ``url(db)`` gives a SQLAlchemy URL for psycopg2."""

    root: Path
    port: int
    bin_dir: Path
    as_user: str | None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _cmd(self, *args: str) -> list[str]:
        prefix = ["runuser", "-u", self.as_user, "--"] if self.as_user else []
        return [*prefix, *args]

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its folder."""
        if (self.datadir / "postmaster.pid").exists():
            subprocess.run(self._cmd(str(self.bin_dir / "pg_ctl"), "-D", str(self.datadir),
                                     "-m", "fast", "-w", "stop"),
                           capture_output=True, text=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres(timeout: float = 60.0) -> PostgresServer:
    """initdb a new cluster in a fresh temp folder and start it on a free loopback port."""
    bin_dir = find_pg_bin()
    as_user = None
    root = Path(tempfile.mkdtemp(prefix="hilbert-pg-"))
    if os.geteuid() == 0:
        as_user = "postgres"
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root needs `runuser` (util-linux) to start "
                                      "PostgreSQL as the postgres user")
        try:
            shutil.chown(root, user="postgres", group=None)
        except LookupError as exc:
            raise PostgresUnavailable(f"no `postgres` system user: {INSTALL_HINT}") from exc
    server = PostgresServer(root=root, port=free_port(), bin_dir=bin_dir, as_user=as_user)
    try:
        init = subprocess.run(
            server._cmd(str(bin_dir / "initdb"), "-D", str(server.datadir), "-U", "postgres",
                        "--auth=trust", "--encoding=UTF8", "--no-instructions"),
            capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            raise PostgresUnavailable(f"initdb failed:\n{init.stdout}\n{init.stderr}")
        opts = (f"-c listen_addresses=127.0.0.1 -c port={server.port} "
                f"-c unix_socket_directories={root} -c max_connections=50 -c fsync=off")
        start = subprocess.run(
            server._cmd(str(bin_dir / "pg_ctl"), "-D", str(server.datadir), "-o", opts,
                        "-l", str(root / "server.log"), "-w", "-t", str(int(timeout)), "start"),
            capture_output=True, text=True, timeout=timeout + 30)
        if start.returncode != 0:
            log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
            raise PostgresUnavailable(f"pg_ctl start failed:\n{start.stdout}\n{start.stderr}"
                                      f"\n{log}")
        _wait_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: PostgresServer, timeout: float) -> None:
    import psycopg2

    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg2.connect(host="127.0.0.1", port=server.port, user="postgres",
                             dbname="postgres", connect_timeout=2).close()
            return
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise PostgresUnavailable(f"server on port {server.port} not ready: {exc}") \
                    from exc
            time.sleep(0.2)

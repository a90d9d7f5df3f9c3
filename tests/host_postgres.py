"""A throwaway PostgreSQL server on the host, from Debian's packages, for the app's PostgreSQL checks.

It listens on no TCP port at all, only on a unix socket in a directory of its own, which the tests bind-mount into
the app's containers (tests/compose.host-postgres.yaml). Its data lives in a temporary directory and goes with it.
PostgreSQL refuses to run as root, so as root it runs as the `postgres` user the package creates.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools import hostdeps

DATABASE = "microposts"
ROLE = "microposts"
PORT = 5432  # only names the socket file (.s.PGSQL.5432): nothing listens on TCP


def server_bin_dir() -> Path:
    """The newest installed server's bin directory (Debian keeps initdb and pg_ctl off the PATH)."""
    versions = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin") if (path / "initdb").exists()),
        key=lambda path: int(re.sub(r"\D", "", path.parent.name) or 0),
    )
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise RuntimeError("no PostgreSQL server found (Debian package: postgresql)")


@dataclass
class HostPostgres:
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="wct-pg-")))
    password: str = field(default_factory=lambda: secrets.token_hex(16))
    superuser_password: str = field(default_factory=lambda: secrets.token_hex(16))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    def url(self, socket_dir: str | Path) -> str:
        """DATABASE_URL for the app's role, through the socket directory as seen where the app runs."""
        return f"postgres://{ROLE}:{self.password}@/{DATABASE}?host={socket_dir}"

    def _as_server_user(self, *command: str | Path, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *map(str, command)], capture_output=True, text=True, **kwargs)

    def start(self) -> HostPostgres:
        assert hostdeps.main(["postgres"]) == 0, "could not install Debian's postgresql"
        bin_dir = server_bin_dir()
        # Others may traverse the root and the socket directory (the app's user in its container connects); the
        # data directory stays private, as PostgreSQL demands.
        self.root.chmod(0o755)
        self.data.mkdir(mode=0o700)
        self.socket_dir.mkdir(mode=0o755)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.superuser_password + "\n")
        if os.geteuid() == 0:
            server = pwd.getpwnam("postgres")
            for path in (self.data, self.socket_dir, pwfile):
                os.chown(path, server.pw_uid, server.pw_gid)
        pwfile.chmod(0o600)
        init = self._as_server_user(
            bin_dir / "initdb",
            "--pgdata",
            self.data,
            "--username",
            "postgres",
            "--pwfile",
            pwfile,
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-instructions",
            timeout=120,
        )
        pwfile.unlink()
        assert init.returncode == 0, f"initdb failed:\n{init.stdout}\n{init.stderr}"
        options = (
            f"-c listen_addresses='' -c port={PORT} -c unix_socket_directories='{self.socket_dir}' "
            "-c unix_socket_permissions=0777 -c fsync=off -c max_connections=50"
        )
        started = self._as_server_user(
            bin_dir / "pg_ctl", "--pgdata", self.data, "--log", self.data / "server.log", "--options", options,
            "--wait", "--timeout", "60", "start", timeout=90,
        )  # fmt: skip
        assert started.returncode == 0, f"pg_ctl start failed:\n{started.stdout}\n{started.stderr}\n{self.log()}"
        self.psql(
            f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD :'password'",
            f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
            password=self.password,
        )
        return self

    def psql(self, *statements: str, database: str = "postgres", **variables: str) -> str:
        """Run statements as the superuser over the socket; return the unaligned, tuples-only output.

        Values go in as psql variables, quoted by psql: `:'name'` in a statement is the literal `variables[name]`.
        """
        command = ["psql", "--no-psqlrc", "--set", "ON_ERROR_STOP=1", "--tuples-only", "--no-align", "--file", "-"]
        command += ["--host", str(self.socket_dir), "--port", str(PORT), "--username", "postgres", "--dbname", database]
        for name, value in variables.items():
            command += ["--set", f"{name}={value}"]
        script = "".join(f"{statement};\n" for statement in statements)
        env = {**os.environ, "PGPASSWORD": self.superuser_password}
        result = subprocess.run(command, input=script, capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, f"psql failed: {result.stderr}"
        return result.stdout.strip()

    def log(self) -> str:
        log = self.data / "server.log"
        return log.read_text(errors="replace")[-4000:] if log.exists() else "(no server log)"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_server_user(
                server_bin_dir() / "pg_ctl", "--pgdata", self.data, "--mode", "fast", "--wait", "stop", timeout=60
            )
        shutil.rmtree(self.root, ignore_errors=True)


# Where the stack's containers see the host server's socket directory (tests/compose.host-postgres.yaml).
SOCKET_IN_CONTAINERS = "/run/postgresql"


def stack_on(server: HostPostgres, workdir: Path, prefix: str):
    """A split stack of the tests' own whose app uses the host's PostgreSQL server through its unix socket."""
    from tests.harness import OwnStack

    stack = OwnStack(
        workdir,
        prefix=prefix,
        env={"DATABASE_URL": server.url(SOCKET_IN_CONTAINERS), "PG_SOCKET_DIR": str(server.socket_dir)},
    )
    stack.compose.files = ("compose.yaml", "tests/compose.host-postgres.yaml")
    return stack

"""The embedded PostgreSQL cluster: initdb, start or join, roles and databases of a run."""

from __future__ import annotations

import logging
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse, urlunparse

from local.services.processes import (
    LOCAL_DIR,
    EmbeddedService,
    ServiceError,
    _ensure_embedded,
    _is_local_host,
    _open_log,
    _Record,
    _ServiceFiles,
    port_open,
    process_alive,
    wait_for_port,
)

log = logging.getLogger(__name__)

# Settings of the project's own PostgreSQL cluster, passed as `-c name=value` on each start
# so that a change here applies at the next start. Sized for tests and benchmarks on a
# small machine.
POSTGRES_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",  # TCP only: no socket-path length limit, no /var/run/postgresql
    "max_connections": "200",
    "shared_buffers": "256MB",
    # LOCAL DEV CLUSTER ONLY: a crash may lose the last few hundred ms of commits (never
    # corrupts; fsync stays on). Never use this setting for a real deployment.
    "synchronous_commit": "off",
    "timezone": "UTC",
    "log_timezone": "UTC",
    "log_line_prefix": "%m [%p] %q%u@%d ",
}
POSTGRES_SUPERUSER = "postgres"

POSTGRES_START_TIMEOUT = 60.0


@dataclass(frozen=True)
class _PgUrl:
    host: str
    port: int
    user: str
    password: str | None
    database: str

    @classmethod
    def parse(cls, url: str) -> _PgUrl:
        parsed = urlparse(url)
        if parsed.scheme not in ("postgres", "postgresql"):
            raise ServiceError(f"DATABASE_URL must start with postgresql://, got {url!r}")
        return cls(
            host=parsed.hostname or "localhost",
            port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"),
            password=unquote(parsed.password) if parsed.password is not None else None,
            database=unquote(parsed.path.lstrip("/")) or "postgres",
        )


def _pg_connect(host: str, port: int, user: str, password: str | None, database: str, timeout: float = 5.0):
    import pg8000.native

    return pg8000.native.Connection(
        user=user, password=password, host=host, port=port, database=database,
        timeout=timeout, application_name="price-crawler-local",
    )  # fmt: skip


def _pg_error_code(exc: Exception) -> str | None:
    detail = exc.args[0] if exc.args else None
    return detail.get("C") if isinstance(detail, dict) else None


def _pg_error_text(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else None
    return detail.get("M", str(detail)) if isinstance(detail, dict) else str(exc)


def _postgres_bindir() -> Path:
    """Directory of the newest installed PostgreSQL server binaries ($POSTGRES_BINDIR wins)."""
    if os.environ.get("POSTGRES_BINDIR"):
        return Path(os.environ["POSTGRES_BINDIR"])
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("postgres") or shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise ServiceError("PostgreSQL server binaries not found (apt-get install postgresql): run `make setup`")


def _postgres_os_user() -> pwd.struct_passwd | None:
    """The OS user PostgreSQL runs as: `postgres` when we are root (it refuses root), else None (us)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        home = "/var/lib/postgresql"
        useradd = ["useradd", "--system", "--user-group", "--home-dir", home, "--shell", "/bin/bash", "postgres"]
        subprocess.run(useradd, check=True, capture_output=True)
        return pwd.getpwnam("postgres")


def _as_user(user: pwd.struct_passwd | None) -> dict:
    """Popen arguments that run the child as `user` (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _check_traversable(path: Path, user: pwd.struct_passwd) -> None:
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == user.pw_uid or st.st_mode & 0o001 or (st.st_gid == user.pw_gid and st.st_mode & 0o010):
            continue
        raise ServiceError(
            f"PostgreSQL runs as OS user {user.pw_name!r}, who cannot enter {parent}: "
            f"make it traversable (chmod o+x {parent}) or set the state directory elsewhere"
        )


def _pg_environment() -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, …) must not redirect the server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _initdb(bindir: Path, data_dir: Path, password_file: Path, os_user: pwd.struct_passwd | None) -> None:
    pg_root = data_dir.parent
    pg_root.mkdir(parents=True, exist_ok=True)
    for directory in (pg_root.parent, pg_root):
        directory.chmod(directory.stat().st_mode | 0o755)
    shutil.rmtree(data_dir, ignore_errors=True)  # leftovers of an interrupted initdb
    data_dir.mkdir(mode=0o700)
    password_file.write_text(secrets.token_urlsafe(24) + "\n")
    password_file.chmod(0o600)
    if os_user is not None:
        _check_traversable(data_dir, os_user)
        for path in (data_dir, password_file):
            os.chown(path, os_user.pw_uid, os_user.pw_gid)
    log.info("initialising a PostgreSQL cluster in %s", data_dir)
    result = subprocess.run(
        [str(bindir / "initdb"), "-D", str(data_dir), "-U", POSTGRES_SUPERUSER, f"--pwfile={password_file}",
         "--auth-host=scram-sha-256", "--auth-local=peer", "--encoding=UTF8", "--no-locale"],
        capture_output=True, text=True, cwd=pg_root, env=_pg_environment(), stdin=subprocess.DEVNULL,
        timeout=120, check=False, **_as_user(os_user),
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        raise ServiceError(f"initdb failed:\n{result.stdout}{result.stderr}")


def _ensure_role_and_database(conn, user: str, password: str, database: str) -> None:
    """Create (or update the password of) the application role, and its database."""
    from pg8000.native import identifier, literal

    role_exists = conn.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=user)
    verb = "ALTER" if role_exists else "CREATE"
    conn.run(f"{verb} ROLE {identifier(user)} LOGIN CREATEDB PASSWORD {literal(password)}")
    if not conn.run("SELECT 1 FROM pg_database WHERE datname = :d", d=database):
        conn.run(f"CREATE DATABASE {identifier(database)} OWNER {identifier(user)}")


def ensure_postgres(
    database_url: str | None = None, *, state_dir: Path = LOCAL_DIR, timeout: float = POSTGRES_START_TIMEOUT
) -> EmbeddedService | None:
    """Make sure PostgreSQL serves `database_url` (default: $DATABASE_URL).

    Returns None when a server that is not ours already answers there (its database is
    created if missing and the role may). Otherwise starts (or joins) the project's own
    cluster in `<state_dir>/postgres/data` on 127.0.0.1:<port> (initdb on first use, run
    as the `postgres` OS user when we are root), makes sure the URL's role (LOGIN
    CREATEDB, with the URL's password) and database exist, and returns its handle.
    Raises `ServiceError` with the reason otherwise.
    """
    if database_url is None:
        from shared.config import Settings

        database_url = Settings().database_url
    url = _PgUrl.parse(database_url)
    files = _ServiceFiles(Path(state_dir), "postgres")
    pg_root = files.state_dir / "postgres"
    data_dir, password_file = pg_root / "data", pg_root / "superuser.password"
    address = f"127.0.0.1:{url.port}"

    def superuser_connection():
        try:
            password = password_file.read_text().strip()
        except OSError as exc:
            raise ServiceError(f"the embedded cluster's superuser password is missing ({exc})") from None
        return _pg_connect("127.0.0.1", url.port, POSTGRES_SUPERUSER, password, "postgres")

    def check_foreign() -> None:
        import pg8000.native

        try:
            _pg_connect(url.host, url.port, url.user, url.password, url.database).close()
            return
        except pg8000.native.DatabaseError as exc:
            if _pg_error_code(exc) != "3D000":  # anything but "database does not exist"
                raise ServiceError(
                    f"PostgreSQL at {url.host}:{url.port} refused {url.user!r}: {_pg_error_text(exc)}"
                ) from None
        except (OSError, pg8000.native.InterfaceError) as exc:
            raise ServiceError(f"something answers at {url.host}:{url.port} but it is not PostgreSQL: {exc}") from None
        create_database(database_url, url.database, replace=False, admin_database="postgres")

    def start() -> tuple[subprocess.Popen, _Record]:
        if not url.password:
            raise ServiceError("the embedded PostgreSQL needs a password in DATABASE_URL (user:password@…)")
        if port_open("127.0.0.1", url.port):
            raise ServiceError(f"127.0.0.1:{url.port} is taken by another program")
        bindir, os_user = _postgres_bindir(), _postgres_os_user()
        if not (data_dir / "PG_VERSION").exists():
            _initdb(bindir, data_dir, password_file, os_user)
        elif os_user is not None:
            _check_traversable(data_dir, os_user)
        settings = [arg for name, value in POSTGRES_SETTINGS.items() for arg in ("-c", f"{name}={value}")]
        log.info("starting embedded PostgreSQL at %s (log %s)", address, files.log_file)
        with _open_log(files.log_file, f"postgres {address}") as output:
            process = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data_dir), "-p", str(url.port), *settings],
                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, cwd=pg_root,
                env=_pg_environment(), start_new_session=True, **_as_user(os_user),
            )  # fmt: skip
        # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
        return process, _Record(process.pid, address, str(data_dir), "SIGINT")

    def wait_ready(process: subprocess.Popen | None) -> None:
        import pg8000.native

        alive = (lambda: process.poll() is None) if process is not None else None
        deadline = time.monotonic() + timeout
        wait_for_port("127.0.0.1", url.port, timeout, alive=alive)
        while True:  # the port opens before the server accepts sessions ("starting up")
            try:
                superuser_connection().close()
                return
            except (pg8000.native.DatabaseError, pg8000.native.InterfaceError, OSError) as exc:
                if alive is not None and not alive():
                    raise ServiceError("the embedded PostgreSQL exited during start-up") from None
                if time.monotonic() > deadline:
                    raise ServiceError(f"the embedded PostgreSQL is not ready after {timeout:.0f} s: {exc}") from None
                time.sleep(0.1)

    def after_ready() -> None:
        conn = superuser_connection()
        try:
            _ensure_role_and_database(conn, url.user, url.password or "", url.database)
        finally:
            conn.close()

    return _ensure_embedded(
        files, host=url.host, port=url.port, address=address,
        start=start, wait_ready=wait_ready, check_foreign=check_foreign, after_ready=after_ready,
    )  # fmt: skip


def with_database(database_url: str, database: str) -> str:
    """`database_url` naming another database on the same server."""
    return urlunparse(urlparse(database_url)._replace(path="/" + database))


def create_database(server_url: str, name: str, *, replace: bool = False, admin_database: str | None = None) -> str:
    """Create database `name` on the server of `server_url` (as its user); return its URL.

    With `replace`, an existing database of that name is dropped first. The user needs
    CREATEDB (the embedded cluster grants it). `admin_database` is the database to connect
    to for the statement (default: the one `server_url` names).
    """
    from pg8000.native import identifier

    url = _PgUrl.parse(server_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, admin_database or url.database)
    try:
        exists = conn.run("SELECT 1 FROM pg_database WHERE datname = :d", d=name)
        if exists and replace:
            conn.run(f"DROP DATABASE {identifier(name)} WITH (FORCE)")
        if not exists or replace:
            conn.run(f"CREATE DATABASE {identifier(name)}")
    except Exception as exc:
        raise ServiceError(f"cannot create database {name!r} as {url.user!r}: {_pg_error_text(exc)}") from exc
    finally:
        conn.close()
    return with_database(server_url, name)


def drop_database(database_url: str, *, admin_database: str = "postgres") -> None:
    """Drop the database `database_url` names, closing its open sessions; missing is fine."""
    from pg8000.native import identifier

    url = _PgUrl.parse(database_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, admin_database)
    try:
        conn.run(f"DROP DATABASE IF EXISTS {identifier(url.database)} WITH (FORCE)")
    finally:
        conn.close()


def empty_database(database_url: str, keep: tuple[str, ...] = ("schema_migrations",)) -> list[str]:
    """TRUNCATE every table of the database except `keep`, restarting identities; return them.

    One statement (CASCADE), so foreign keys between the tables do not matter.
    """
    from pg8000.native import identifier

    url = _PgUrl.parse(database_url)
    conn = _pg_connect(url.host, url.port, url.user, url.password, url.database)
    try:
        rows = conn.run(
            "SELECT schemaname, tablename FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND NOT tablename = ANY(:keep)"
            " ORDER BY 1, 2",
            keep=list(keep),
        )
        if rows:
            tables = ", ".join(f"{identifier(schema)}.{identifier(table)}" for schema, table in rows)
            conn.run(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        conn.close()
    return [f"{schema}.{table}" for schema, table in rows]


def drop_orphaned_databases(server_url: str, prefix: str) -> list[str]:
    """Drop the databases named `<prefix><pid>` whose process is gone; return their names.

    Test sessions name their database after their pid; one killed before its teardown
    leaves it behind. Only done on a server of this machine, where the pid means something.
    """
    url = _PgUrl.parse(server_url)
    if not _is_local_host(url.host):
        return []
    conn = _pg_connect(url.host, url.port, url.user, url.password, url.database)
    try:
        rows = conn.run("SELECT datname FROM pg_database WHERE starts_with(datname, :p)", p=prefix)
    finally:
        conn.close()
    dropped = []
    for (name,) in rows:
        pid = name[len(prefix) :]
        if pid.isdigit() and not process_alive(int(pid)):
            drop_database(with_database(server_url, name))
            dropped.append(name)
    return dropped

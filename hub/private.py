"""Private files and folders: what govhub keeps under ``GOVHUB_DATA_DIR`` (node state,
spools, the embedded database) holds records and secrets, so only the account that
runs govhub may read it.

Folders are 0700 and files 0600 whatever the umask: ``mkdir`` and ``open`` modes
are masked by it, so both are set again with ``chmod`` after creating. A folder
or file govhub made more open in an earlier version is tightened when it is used
again (and logged), never loosened. Folders that are not govhub's to close are
left alone: a sticky one such as ``/tmp``, ``/``, the home folder, or one another
account owns (``GOVHUB_DATA_DIR=/tmp`` must not close ``/tmp``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

FOLDER = 0o700
FILE = 0o600


def private_dir(path: Path, *, within: Path | None = None) -> Path:
    """``path`` as a folder only its owner can use (0700), made with its missing parents.

    Every folder created on the way is 0700; existing ones are tightened from
    ``within`` (a folder above ``path``, e.g. the data dir) down to ``path``, or
    ``path`` alone when ``within`` is not given. Returns ``path``.
    """
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile: tightened like any other
            folder.mkdir(mode=FOLDER)
        os.chmod(folder, FOLDER)
    top = within if within is not None and path.is_relative_to(within) else path
    for folder in [path, *path.parents]:
        _tighten(folder, FOLDER)
        if folder == top:
            break
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read or write (0600), created empty if missing.

    For files another library writes itself (SQLite, PostgreSQL): create them
    private first, and the library keeps the mode. Returns ``path``.
    """
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, FILE)
    try:
        mode = stat.S_IMODE(os.fstat(handle).st_mode)
        if mode != FILE:
            os.fchmod(handle, FILE)
            if mode & 0o077:
                log.warning("made %s private (mode %o → 600)", path, mode)
    finally:
        os.close(handle)
    return path


def tighten(path: Path) -> None:
    """Make an existing file 0600 (or folder 0700) if it is more open; nothing if missing."""
    try:
        is_dir = path.is_dir()
    except OSError:
        return
    _tighten(path, FOLDER if is_dir else FILE)


def _tighten(path: Path, wanted: int) -> None:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(info.st_mode)
    if not mode & 0o077 or stat.S_ISLNK(info.st_mode) or _shared(path, info):
        return
    os.chmod(path, wanted | (mode & 0o700))
    log.warning("made %s private (mode %o → %o)", path, mode, wanted | (mode & 0o700))


def _shared(path: Path, info: os.stat_result) -> bool:
    """A folder that is not govhub's to close: one shared by design (sticky, like /tmp),
    the root or a home folder, or one another account owns. What govhub makes inside
    it is private all the same."""
    if info.st_mode & stat.S_ISVTX or info.st_uid != os.geteuid():
        return True
    return path.parent == path or path in (Path.home(), Path(os.environ.get("HOME") or "/"))

"""Every store govhub keeps is private (issue #11): the embedded PostgreSQL answers only
the account that runs govhub, and everything under GOVHUB_DATA_DIR is 0600 (files) or
0700 (folders) whatever the umask, after a demo run and after a node's work."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import test_node_runtime as node_runtime
from support.rabbitmq import url_for
from test_node_runtime import CLI, Broker, he_notice, push

from adapters.push import spool, spool_dir, take_in
from hub.federation import load_federation
from hub.nodedb import open_state, state_path
from hub.outbox.pipeline import Pipeline
from hub.private import private_dir, private_file
from hub.review import Reviewer, ReviewPolicy
from hub.store.embedded import EmbeddedServer, start_embedded

ROOT = Path(__file__).parent.parent
RECORDS = ROOT / "examples" / "records"
FEDERATION = load_federation(ROOT / "nodes.toml")
broker = node_runtime.broker  # a vhost and broker users of this module's own


def open_paths(top: Path) -> list[str]:
    """Every path under ``top`` (and ``top``) that is not a 0700 folder or a 0600 file."""
    found = []
    for path in [top, *top.rglob("*")]:
        mode = path.lstat().st_mode
        wanted = 0o700 if stat.S_ISDIR(mode) else 0o600
        if stat.S_ISSOCK(mode):
            continue  # PostgreSQL's socket, inside its 0700 folder while it runs
        if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)) or stat.S_IMODE(mode) != wanted:
            found.append(f"{oct(stat.S_IMODE(mode))} {path}")
    return found


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most open umask there is: nothing govhub makes may depend on the umask."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


# -- the helper -------------------------------------------------------------------------------


def test_private_folders_and_files_ignore_the_umask(tmp_path: Path, loose_umask: None) -> None:
    folder = private_dir(tmp_path / "data" / "nodes" / "x", within=tmp_path / "data")
    file = private_file(folder / "state.sqlite3")
    assert open_paths(tmp_path / "data") == []
    assert file.read_bytes() == b""


def test_what_an_earlier_govhub_left_open_is_tightened(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    (data / "nodes" / "x").mkdir(parents=True, mode=0o755)
    (data / "nodes" / "x" / "state.sqlite3").write_bytes(b"kept")
    os.chmod(data / "nodes" / "x" / "state.sqlite3", 0o644)
    state = private_file(private_dir(data / "nodes" / "x", within=data) / "state.sqlite3")
    assert open_paths(data) == []
    assert state.read_bytes() == b"kept"


# -- a node's stores --------------------------------------------------------------------------


def test_a_nodes_state_and_spool_are_private(tmp_path: Path, loose_umask: None) -> None:
    data = tmp_path / "data"
    node = FEDERATION.node("shexian")
    state = open_state(state_path(data, node.id))
    pipeline = Pipeline(node, state, Reviewer(ReviewPolicy()))
    for path in sorted(RECORDS.glob("*.xml")):
        pipeline.accept(path.read_bytes(), str(path))  # most are refused: not shexian's own
    pipeline.accept(b"<not-a-record/>", "broken.xml")
    state.execute("SELECT count(*) FROM refused").fetchone()
    folder = spool_dir(data, node.id, "cms")
    spool(folder, (RECORDS / "document.xml").read_bytes())
    assert len(take_in(folder, None)) == 1
    spool(folder, (RECORDS / "notice.xml").read_bytes())
    wal = state_path(data, node.id).with_name("state.sqlite3-wal")
    assert wal.exists()  # WAL mode: the -wal and -shm files are there and checked too
    assert open_paths(data) == []
    state.close()


# -- the embedded PostgreSQL ------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded() -> Iterator[EmbeddedServer]:
    base = Path(tempfile.mkdtemp(prefix="govhub-private-"))
    try:
        with start_embedded(base / "data" / "postgres") as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_embedded_server_listens_on_no_tcp_port(embedded: EmbeddedServer) -> None:
    with psycopg.connect(embedded.url) as conn:
        row = conn.execute("SELECT current_setting('listen_addresses')").fetchone()
    assert row == ("",)
    assert "127.0.0.1" not in embedded.url and "localhost" not in embedded.url
    assert open_paths(embedded.data_dir.parent) == []


def test_another_local_account_cannot_connect(embedded: EmbeddedServer) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root, to try the connection as another account (nobody)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed: cannot run as another account")
    probe = f"import psycopg; psycopg.connect({embedded.url!r}, connect_timeout=5)"
    as_nobody = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    done = subprocess.run(
        [*as_nobody, sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert done.returncode != 0, "nobody connected to the embedded PostgreSQL"
    assert "Permission denied" in done.stderr, done.stderr[-2000:]
    same = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0, same.stderr[-2000:]  # the account that runs govhub gets in


def test_under_root_the_folders_above_the_data_dir_are_left_as_they_were(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: only then does the server run as another account")
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    os.chmod(closed, 0o700)
    above = [closed, *closed.parents]
    before = {p: p.stat().st_mode for p in above}
    data_dir = closed / "data" / "postgres"
    with start_embedded(data_dir) as server:
        assert server.account is not None
        with psycopg.connect(server.url) as conn:
            conn.execute("CREATE TABLE kept (n int)")
    assert {p: p.stat().st_mode for p in above} == before
    with start_embedded(data_dir) as again, psycopg.connect(again.url) as conn:
        assert conn.execute("SELECT count(*) FROM kept").fetchone() == (0,)
    assert {p: p.stat().st_mode for p in above} == before


# -- the demo, from any folder, and the commands that read its store -------------------------


def govhub_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVHUB_")}
    return env | {"GOVHUB_DATA_DIR": str(data_dir), "PYTHONIOENCODING": "utf-8"}


def succeeds(
    command: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """Run a govhub command in ``cwd``; it must exit 0 (its output's end says why not)."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def loosely(command: list[str]) -> list[str]:
    """``command`` under umask 000, as a careless service manager might start it."""
    return ["sh", "-c", 'umask 000 && exec "$@"', "sh", *command]


def test_the_installed_demo_runs_from_an_empty_folder_and_records_finds_its_store(
    tmp_path: Path,
) -> None:
    govhub = Path(sys.executable).parent / "govhub"
    if not govhub.exists():
        pytest.skip(f"govhub is not installed next to {sys.executable}")
    empty, data = tmp_path / "empty", tmp_path / "data"
    empty.mkdir()
    env = govhub_env(data)
    demo = succeeds(loosely([str(govhub), "demo", "--once"]), empty, env)
    count = len(list(RECORDS.glob("*.xml")))
    assert f"  {count} inserted; 0 dead-lettered" in demo.stdout
    assert f"store: the embedded PostgreSQL in {data / 'postgres'}" in demo.stdout
    assert list(empty.iterdir()) == []  # nothing written where it was started
    assert open_paths(data) == []

    listed = succeeds([str(govhub), "records", "--json", "--limit", "100"], empty, env)
    assert len(listed.stdout.splitlines()) == count
    assert f"store: the embedded PostgreSQL in {data / 'postgres'}" in listed.stderr
    dead = succeeds([str(govhub), "deadletters", "list"], empty, env)
    assert f"store: the embedded PostgreSQL in {data / 'postgres'}" in dead.stderr
    assert open_paths(data) == []


@pytest.fixture(scope="module")
def wheel_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """govhub's wheel, built from this checkout and unpacked (what `pip install` puts in place)."""
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed: {built.stderr[-3000:]}")
    tree = out / "tree"
    with zipfile.ZipFile(next(out.glob("govhub-*.whl"))) as wheel:
        wheel.extractall(tree)
    return tree


def test_the_wheel_carries_the_samples_and_its_demo_uses_them(
    wheel_tree: Path, tmp_path: Path
) -> None:
    samples = wheel_tree / "hub" / "samples"
    assert (samples / "nodes.toml").read_bytes() == (ROOT / "nodes.toml").read_bytes()
    shipped = sorted(p.name for p in (samples / "records").glob("*.xml"))
    assert shipped == sorted(p.name for p in RECORDS.glob("*.xml"))
    assert (samples / "push" / "emergency-cn.xml").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = govhub_env(tmp_path / "data") | {"PYTHONPATH": str(wheel_tree)}
    demo = succeeds([sys.executable, "-m", "hub.cli", "demo", "--once"], empty, env)
    assert f"Federation map {samples / 'nodes.toml'}" in demo.stdout
    assert f"example records in {samples / 'records'}" in demo.stdout
    assert "the notice reached 14 of 14 nodes below the centre" in demo.stdout


# -- a node run -------------------------------------------------------------------------------


def test_a_node_run_under_umask_000_leaves_only_private_paths(
    broker: Broker, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    env = govhub_env(data) | {
        **broker.environ,
        "GOVHUB_BROKER_URL": url_for(broker.vhost, "guest", "not-used"),
        "GOVHUB_CONFIG": str(ROOT / "nodes.toml"),
    }
    command = [sys.executable, "-c", CLI, "node", "run", "--node", "hanshan", "--port", "0"]
    process = subprocess.Popen(
        loosely([*command, "--user-prefix", broker.prefix]),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines: list[str] = []
        while not lines or not lines[-1].startswith("stop with"):
            line = process.stdout.readline()  # type: ignore[union-attr]
            assert line, f"govhub node run ended early: {process.communicate(timeout=10)}"
            lines.append(line.strip())
        notice = he_notice(22)

        async def push_and_wait() -> None:
            he = await broker.bus("he")
            await he.publish(push(notice))
            await he.close()

        asyncio.run(push_and_wait())
        state = state_path(data, "hanshan")
        deadline = time.monotonic() + 30
        while not _holds(state, notice.id):
            assert time.monotonic() < deadline, "the pushed notice never reached the inbox"
            time.sleep(0.1)
        assert open_paths(data) == []  # while it runs: the -wal and -shm files too
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert open_paths(data) == []


def _holds(state: Path, record_id: str) -> bool:
    if not state.exists():
        return False
    with contextlib.closing(sqlite3.connect(f"file:{state}?mode=ro", uri=True)) as conn:
        return bool(conn.execute("SELECT 1 FROM inbox WHERE record_id = ?", [record_id]).fetchone())


def test_a_shared_folder_above_is_not_closed(tmp_path: Path, loose_umask: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103  (like /tmp: GOVHUB_DATA_DIR=/tmp must not close it)
    private_dir(shared / "nodes" / "x", within=shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert open_paths(shared / "nodes") == []

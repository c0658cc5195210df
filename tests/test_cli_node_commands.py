"""``govhub publish``, ``review``, ``broker setup`` and ``push`` as an operator runs them."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.rabbitmq import HOST, PORT, delete_users, rabbitmqctl, url_for
from support.services import require_service

from hub import records
from hub.bus import AmqpBus
from hub.bus.topology import down_queue
from hub.cli import main
from hub.federation import load_federation
from hub.nodedb import open_state, state_path
from hub.outbox import entries as outbox

ROOT = Path(__file__).parent.parent
FEDERATION = load_federation(ROOT / "nodes.toml")
EXAMPLES = ROOT / "examples" / "records"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_CONFIG", str(ROOT / "nodes.toml"))
    return tmp_path


def test_publish_queues_holds_and_refuses(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notice = records.parse((EXAMPLES / "notice.xml").read_bytes())  # node shexian
    secret = dataclasses.replace(notice, id=notice.id + "-s", title="机密★5年 " + notice.title)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "secret.xml").write_bytes(secret.to_xml())
    (tmp_path / "in" / "other.xml").write_bytes((EXAMPLES / "news.xml").read_bytes())  # mee's
    code = main(
        ["publish", "--node", "shexian", str(EXAMPLES / "notice.xml"), str(tmp_path / "in")]
    )
    out = capsys.readouterr().out
    assert code == 1  # one was refused
    assert f"{EXAMPLES / 'notice.xml'}: {notice.id}: queued" in out
    assert f"{secret.id}: held for review (title carries the classification marking" in out
    assert "other.xml: urn:govhub:mee:" in out and "refused" in out
    assert "node shexian: 1 queued, 1 refused, 1 held" in out
    state = open_state(state_path(data_dir, "shexian"))
    assert [e.record_id for e in outbox.due(state, 10)] == [notice.id]


def test_review_list_show_approve(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notice = records.parse((EXAMPLES / "notice.xml").read_bytes())
    secret = dataclasses.replace(notice, summary="联系人身份证号 11010519491231002X")
    (tmp_path / "s.xml").write_bytes(secret.to_xml())
    main(["publish", "--node", "shexian", str(tmp_path / "s.xml")])
    capsys.readouterr()
    assert main(["review", "list", "--node", "shexian"]) == 0
    listing = capsys.readouterr().out
    assert f"{notice.id}  r{notice.revision}  held" in listing and "summary:" in listing
    assert "11010519491231002X" not in listing  # personal data is masked
    assert (
        main(
            [
                "review",
                "approve",
                notice.id,
                "--node",
                "shexian",
                "--by",
                "张三",
                "--reason",
                "已删除身份证号后重发",
            ]
        )
        == 0
    )
    assert "approved by 张三" in capsys.readouterr().out
    assert main(["review", "show", notice.id, "--node", "shexian"]) == 0
    shown = capsys.readouterr().out
    assert "audit" in shown and "张三 approved: 已删除身份证号后重发" in shown
    assert (
        main(["review", "reject", notice.id, "--node", "shexian", "--by", "李四", "--reason", "x"])
        == 2
    )
    assert "already approved by 张三" in capsys.readouterr().err
    assert main(["review", "show", "urn:govhub:shexian:nope", "--node", "shexian"]) == 2


@pytest.fixture
def broker_federation(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str, dict[str, str]]]:
    require_service("RabbitMQ", HOST, PORT)
    rabbitmqctl("ping")
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"govhub-cli-{run}", f"c{run}-"
    passwords = {
        variable: f"pw-{uuid.uuid4().hex}"
        for node in FEDERATION.nodes.values()
        for variable in node.credentials.values()
    }
    for variable, password in passwords.items():
        monkeypatch.setenv(variable, password)
    monkeypatch.setenv("GOVHUB_CONFIG", str(ROOT / "nodes.toml"))
    try:
        yield vhost, prefix, passwords
    finally:
        rabbitmqctl("delete_vhost", vhost)
        delete_users(prefix)


def test_broker_setup_then_push_reaches_the_subtree(
    broker_federation: tuple[str, str, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vhost, prefix, passwords = broker_federation
    assert main(["broker", "setup", "--vhost", vhost, "--user-prefix", prefix]) == 0
    assert f"vhost {vhost}:" in capsys.readouterr().out.splitlines()[-1]
    assert main(["broker", "setup", "--vhost", vhost, "--user-prefix", prefix]) == 0
    assert "0 created, 0 updated" in capsys.readouterr().out  # idempotent

    monkeypatch.setenv("GOVHUB_BROKER_URL", url_for(vhost, "nobody", "unused"))
    emergency = EXAMPLES / "emergency.xml"  # a Shenzhen (sz) warning: sz has a child (ft)
    assert main(["push", str(emergency), "--node", "sz", "--user-prefix", prefix]) == 0
    assert "pushed urn:govhub:sz:" in capsys.readouterr().out
    assert main(["push", str(emergency), "--node", "ft", "--user-prefix", prefix]) == 2
    assert "only a portal can push" in capsys.readouterr().err

    async def received(node_id: str) -> int:
        password = passwords[FEDERATION.node(node_id).credentials["broker_password"]]
        bus = await AmqpBus.connect(url_for(vhost, f"{prefix}{node_id}", password))
        count = 0
        try:
            async with bus.consume(down_queue(node_id), prefetch=10) as consumer:
                while True:
                    try:
                        delivery = await asyncio.wait_for(consumer.__anext__(), 1.0)
                    except TimeoutError:
                        return count
                    count += 1
                    await delivery.ack()
        finally:
            await bus.close()

    assert asyncio.run(received("ft")) == 1
    assert asyncio.run(received("yx")) == 0

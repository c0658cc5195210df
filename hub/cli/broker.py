"""``govhub broker setup``: make RabbitMQ match the federation map."""

from __future__ import annotations

import argparse
import os

from hub.bus import BrokerAdmin, HttpAdmin, RabbitmqctlAdmin, setup_broker
from hub.cli.common import EXIT_OK, UsageError, config_flag
from hub.federation import load_federation
from hub.settings import Settings


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "broker",
        help="set up RabbitMQ for the federation",
        description="Manage the RabbitMQ broker of the federation.",
    )
    actions = parser.add_subparsers(title="actions", metavar="ACTION", required=True)
    setup = actions.add_parser(
        "setup",
        help="create the vhost, exchanges, queues, bindings and one user per node",
        description="Create (or check) the vhost, the up/down/dead exchanges, every node's "
        "queues and bindings, and one broker user per node with permissions and topic "
        "permissions from nodes.toml, so that a node can publish only under its own path and "
        "only a portal can push down to its subtree. Passwords come from the environment "
        "variables that nodes.toml names. Idempotent: a second run reports everything found.",
    )
    config_flag(setup)
    setup.add_argument("--vhost", default="govhub", help="the vhost to use (default: govhub)")
    setup.add_argument(
        "--user-prefix", default="", metavar="TEXT", help="prefix of every node's user name"
    )
    setup.add_argument(
        "--rabbitmqctl",
        default="rabbitmqctl",
        metavar="PATH",
        help="the rabbitmqctl program (default: rabbitmqctl on PATH)",
    )
    setup.add_argument(
        "--broker-node", metavar="NAME", help="the RabbitMQ node to manage (rabbitmqctl -n)"
    )
    setup.add_argument(
        "--management-url",
        metavar="URL",
        help="use the management HTTP API instead of rabbitmqctl (e.g. http://rabbitmq:15672); "
        "the administrator's user and password come from GOVHUB_BROKER_ADMIN_USER and "
        "GOVHUB_BROKER_ADMIN_PASSWORD",
    )
    setup.add_argument("-v", "--verbose", action="store_true", help="also list what was found")
    setup.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    federation = load_federation(settings.config)
    admin: BrokerAdmin
    if args.management_url:
        user = os.environ.get("GOVHUB_BROKER_ADMIN_USER", "")
        password = os.environ.get("GOVHUB_BROKER_ADMIN_PASSWORD", "")
        if not user:
            raise UsageError("--management-url needs GOVHUB_BROKER_ADMIN_USER (and _PASSWORD)")
        admin = HttpAdmin(args.management_url, user, password)
    else:
        admin = RabbitmqctlAdmin(args.rabbitmqctl, node=args.broker_node)
    report = setup_broker(federation, args.vhost, admin, os.environ, user_prefix=args.user_prefix)
    for change in report.changes:
        if args.verbose or change.action != "found":
            print(change)
    print(report.summary())
    return EXIT_OK

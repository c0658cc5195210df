"""The message bus between nodes: records go up to portals and are pushed down to subtrees.

``routing`` builds keys and bindings from node paths, ``topology`` says what
the broker holds for a federation, ``message`` is the contract (``Message``,
``Delivery``, ``Consumer``, ``Bus``), ``amqp`` and ``memory`` implement it, and
``setup`` (with ``admin``) makes RabbitMQ match the federation map. See
docs/routing.md.
"""

from hub.bus.amqp import AmqpBus
from hub.bus.broker.admin import BrokerAdmin, HttpAdmin, RabbitmqctlAdmin
from hub.bus.broker.setup import SetupReport, setup_broker
from hub.bus.contract import (
    DEAD_AT,
    ORIGINAL_EXCHANGE,
    ORIGINAL_QUEUE,
    ORIGINAL_ROUTING_KEY,
    ORIGINAL_USER_ID,
    PART,
    REASON,
    Bus,
    Consumer,
    Delivery,
    Message,
    RefusedPart,
)
from hub.bus.errors import (
    BrokerAdminError,
    BrokerSetupError,
    BusConnectError,
    BusError,
    ConsumeError,
    DeliveryLost,
    PublishError,
    PublishRefused,
)
from hub.bus.memory import MemoryBroker, MemoryBus
from hub.bus.routing import (
    TOPIC_HEADER,
    Route,
    ancestor_bindings,
    down_key,
    parse_key,
    push_binding,
    subtree_binding,
    topic_matches,
    up_key,
    wanted_by,
)
from hub.bus.topology import QueueLimits, QueueSpec, broker_user, dead_queue, node_queues

__all__ = [
    "DEAD_AT",
    "ORIGINAL_EXCHANGE",
    "ORIGINAL_QUEUE",
    "ORIGINAL_ROUTING_KEY",
    "ORIGINAL_USER_ID",
    "PART",
    "REASON",
    "TOPIC_HEADER",
    "AmqpBus",
    "BrokerAdmin",
    "BrokerAdminError",
    "BrokerSetupError",
    "Bus",
    "BusConnectError",
    "BusError",
    "ConsumeError",
    "Consumer",
    "Delivery",
    "DeliveryLost",
    "HttpAdmin",
    "MemoryBroker",
    "MemoryBus",
    "Message",
    "PublishError",
    "PublishRefused",
    "QueueLimits",
    "QueueSpec",
    "RabbitmqctlAdmin",
    "RefusedPart",
    "Route",
    "SetupReport",
    "ancestor_bindings",
    "broker_user",
    "dead_queue",
    "down_key",
    "node_queues",
    "parse_key",
    "push_binding",
    "setup_broker",
    "subtree_binding",
    "topic_matches",
    "up_key",
    "wanted_by",
]

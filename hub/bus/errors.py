"""Errors of the message bus: each says what failed, where, and what to do about it."""

from __future__ import annotations

from typing import Any, ClassVar

from hub.errors import HubError


class BusError(HubError):
    """Base of the bus errors. ``template`` names the fields every instance carries."""

    template: ClassVar[str] = "{detail}"

    def __init__(self, **fields: Any) -> None:
        self.fields = fields
        super().__init__(self.template.format(**fields))


class PublishError(BusError):
    """A publish did not count as sent: the broker did not confirm it.

    The message may still have reached the broker (a lost confirm is not a
    refusal), so the caller retries and consumers drop duplicates by
    ``message_id``.
    """

    template = "publish to {exchange} with key {routing_key} failed: {reason} ({fix})"


class PublishRefused(PublishError):
    """The broker refused the publish and closed the channel (a permission or a forged user).

    ``reply_code`` is the AMQP code: 403 ACCESS_REFUSED (no permission for the
    exchange or the routing key), 406 PRECONDITION_FAILED (``user_id`` is not
    the connection's user), 404 NOT_FOUND (the exchange does not exist).
    """

    template = "publish to {exchange} with key {routing_key} refused by the broker: {reply_text}"

    @property
    def reply_code(self) -> int:
        return int(self.fields["reply_code"])

    @property
    def reply_text(self) -> str:
        return str(self.fields["reply_text"])


class DeliveryLost(BusError):
    """A delivery can no longer be settled: its consumer or connection is gone.

    The broker has already put the message back in its queue (or will, when it
    notices), so it will be delivered again; nothing is lost.
    """

    template = (
        "message {message_id} from queue {queue} can no longer be {action}: {reason}; "
        "the broker delivers it again"
    )


class ConsumeError(BusError):
    """A queue cannot be consumed: it does not exist, or the user may not read it."""

    template = "cannot consume from queue {queue}: {reason} ({fix})"


class BusConnectError(BusError):
    """The first connection to the broker failed."""

    template = "cannot connect to the broker at {where}: {reason} ({fix})"


class BrokerAdminError(BusError):
    """An administration command (``rabbitmqctl``) is missing or failed."""

    template = "{command}: {reason} ({fix})"


class BrokerSetupError(BusError):
    """The broker holds objects that conflict with what the federation needs."""

    template = "broker setup for vhost {vhost} stopped, nothing was changed:\n{conflicts}"

"""Setting up RabbitMQ from the federation map: ``setup`` (vhost, exchanges, queues, users
and their permissions), ``admin`` (rabbitmqctl or the HTTP API) and ``credentials``
(each node's broker URL)."""

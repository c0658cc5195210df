"""Fixtures shared by the whole suite: real services, one schema or vhost per run."""

pytest_plugins = ["support.postgres", "support.rabbitmq"]

"""Fixtures shared by the whole suite: real services, one schema or vhost per run."""

pytest_plugins = ["postgres_fixtures", "rabbitmq_fixtures"]

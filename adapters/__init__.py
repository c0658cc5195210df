"""Adapters that turn legacy content systems into govhub disclosure records."""

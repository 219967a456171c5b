"""The admin panel: each model's admin in the module of its concept, registered on import."""

from fleet.admin import alerts, events, metrics, nodes, registries, services, users, webhooks

__all__ = ["alerts", "events", "metrics", "nodes", "registries", "services", "users", "webhooks"]

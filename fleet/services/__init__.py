"""Services: what people do to them (actions), their spec, deploy webhooks and image updates."""

from fleet.services.actions import (
    ServiceError,
    StaleSpec,
    create,
    delete,
    deploy,
    deploy_changes,
    restart_replica,
    rollback,
    scale,
)

__all__ = [
    "ServiceError",
    "StaleSpec",
    "create",
    "delete",
    "deploy",
    "deploy_changes",
    "restart_replica",
    "rollback",
    "scale",
]

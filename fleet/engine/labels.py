"""The labels every container Fleet makes carries: ownership lives on the node itself.

A restarted worker finds what it (or a worker that died) created by these alone;
containers without SERVICE are never Fleet's and never touched.
"""

SERVICE = "fleet.service"
SLOT = "fleet.slot"
DEPLOYMENT = "fleet.deployment"
REVISION = "fleet.revision"
REPLICA = "fleet.replica"

"""Access: roles, API tokens, the client's address, and secrets sealed at rest."""

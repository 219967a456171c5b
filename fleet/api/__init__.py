"""The REST API under /api/: thin views and serializers over the domain's actions."""

"""Fleet's manage.py commands: the watch process, the ingress, roles and the first admin."""

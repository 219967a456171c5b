"""Stacks: applications of several services given as one Compose file (read and checked here)."""

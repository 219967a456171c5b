"""Converge: deploy, scale, roll back and heal services, from a pure plan to the engines' calls."""

"""Alerts: incidents derived from Event rows, told once to the channels that asked.

rules (pure): which event opens, clears or resolves which incident, and how an
incident's state moves; messages (pure): what each alert says; incidents: the
processor beat runs (events past a stored cursor, then conditions over time);
delivery: one Celery task per (alert, channel), retried with backoff; channels:
what admins do to channels (validated, audited).
"""

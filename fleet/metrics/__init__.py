"""Metrics: replicas and nodes sampled by the watch, stored with rollups, read as series.

- readings: two counter readings -> usage (pure)
- sampler: one thread per node, in `manage.py watch`, spreading one-shot stats calls
- store: writing a round, rolling up and pruning (beat)
- series: the API's ranges and steps, and the queries behind the charts
- prometheus: the /metrics collector, read from the database on each scrape
- thresholds: "above X% for Y minutes" rules and their events
"""

"""The ingress: one address per service through HAProxy, configured live from replica state.

A service whose spec declares `ingress` gets a backend; each of its serving replicas
(running, and healthy where checked) is a server of it, at its node's address and the
host port its container port is published on. Backends follow replica state through
the runtime API (sync.py), are drained before a replica stops (drain.py), and a new
backend arrives by a hitless reload of a configuration Fleet writes (config.py).
"""

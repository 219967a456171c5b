"""The browser dashboard: pages on a plain GET, kept fresh over the live and console sockets."""

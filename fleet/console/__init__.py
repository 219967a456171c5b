"""The console: a terminal on a running replica, and its container's log followed live."""

"""HTTP to an engine over its node's SSH Link (ssh.py): the Docker SDK's connections, pools
and adapter, each connection's socket a Lane's local end.

Part of the Docker seam: client.py mounts SSHAdapter on an SSH node's clients.
"""

import http.client
import socket
import time
from typing import Any

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from fleet.engine.ssh import DIAL, Lane, Link, SSHError, SSHTimeout

NO_TIMEOUT_BUDGET = 60.0  # seconds to connect when a call gives no timeout


class _Refused(NewConnectionError):
    """The SDK's "cannot connect", saying only why (urllib3's names the connection first)."""

    def __init__(self, conn: Any, problem: str) -> None:
        super().__init__(conn, problem)
        self.problem = problem

    def __str__(self) -> str:
        return self.problem


class _Connection(urllib3.connection.HTTPConnection):
    """An HTTP connection whose socket is a Lane's local end."""

    def __init__(self, link: Link, timeout: Any) -> None:
        super().__init__("localhost", timeout=timeout)
        self.link = link
        self.lane: Lane | None = None

    def _new_conn(self) -> socket.socket:
        budget = self.timeout if isinstance(self.timeout, int | float) else NO_TIMEOUT_BUDGET
        try:
            self.lane = self.link.open(time.monotonic() + budget)
            return self.lane.local
        except SSHTimeout as exc:
            problem, timed_out = str(exc), True
        except SSHError as exc:
            problem, timed_out = str(exc), False
        # Raised here, with no exception being handled: the message is the whole story.
        raise (ConnectTimeoutError if timed_out else _Refused)(self, problem)

    def getresponse(self) -> Any:  # urllib3's HTTPResponse
        lane = self.lane  # http.client closes the connection (and forgets it) as it raises
        try:
            return super().getresponse()
        except http.client.RemoteDisconnected:
            said = lane.said if lane else ""
            if not said:
                raise
        raise http.client.RemoteDisconnected(f"`{DIAL}` on {self.link.where} ended: {said}")

    def close(self) -> None:
        super().close()
        self.lane = None


class _Pool(urllib3.HTTPConnectionPool):
    """One engine's channels, as connections; one too many after a burst ends quietly."""

    def __init__(self, link: Link, maxsize: int) -> None:
        super().__init__("localhost", maxsize=maxsize)
        self.link = link

    def _new_conn(self) -> _Connection:
        return _Connection(self.link, self.timeout.connect_timeout)

    def _get_conn(self, timeout: float | None = None) -> Any:
        conn = super()._get_conn(timeout)
        lane = getattr(conn, "lane", None)
        if lane is not None and not lane.take():
            conn.close()  # closed while it waited: connects anew
        return conn

    def _put_conn(self, conn: Any) -> None:
        if conn is not None and self.pool is not None and self.pool.full():
            conn.close()
            return
        lane = getattr(conn, "lane", None)
        if lane is not None:
            lane.park()
        super()._put_conn(conn)


class SSHAdapter(requests.adapters.HTTPAdapter):
    """Every request of a client, to its node's engine over the node's Link."""

    def __init__(self, link: Link, pool_size: int) -> None:
        self.link = link
        self.channels = _Pool(link, pool_size)
        super().__init__()

    def get_connection_with_tls_context(self, *args: Any, **kwargs: Any) -> _Pool:
        return self.channels

    def get_connection(self, *args: Any, **kwargs: Any) -> _Pool:
        return self.channels

    def request_url(self, request: Any, proxies: Any) -> str:
        return request.path_url  # no host, no proxy: the engine is at the channel's end

    def close(self) -> None:
        super().close()
        self.channels.close()

"""Settings of the HTTP server, kept apart from the server so that reading them does not import it."""

from __future__ import annotations

import msgspec

from sentiment.core.bounds import AtLeastOne, Positive


class ServerLimits(msgspec.Struct, frozen=True):
    """How long a request head may take to arrive, how long an idle keep-alive connection stays open, how many
    connections may be open at once (see `sentiment.web.server`), and how long a shutdown may take."""

    header_timeout_s: Positive = 10.0
    keep_alive_s: Positive = 5.0
    max_connections: AtLeastOne = 1000
    # From SIGTERM to exit: half for the requests in flight to finish, half to stop the work and write what
    # the database takes (the rest waits in the journal for the next start).
    shutdown_s: Positive = 20.0

    @property
    def drain_s(self) -> float:
        return self.shutdown_s / 2

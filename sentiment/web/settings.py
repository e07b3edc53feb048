"""Settings of the HTTP server, kept apart from the server so that reading them does not import it."""

from __future__ import annotations

import msgspec

from sentiment.core.bounds import AtLeastOne, Positive


class ServerLimits(msgspec.Struct, frozen=True):
    """How long a request head may take to arrive, how long an idle keep-alive connection stays open, and how
    many connections may be open at once (see `sentiment.web.server`)."""

    header_timeout_s: Positive = 10.0
    keep_alive_s: Positive = 5.0
    max_connections: AtLeastOne = 1000

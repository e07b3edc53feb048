"""A throttle of wrong secrets per client: a few free tries, then a wait that doubles with each further
failure, so that guessing a token takes years instead of seconds while a typo costs nothing."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _Client:
    failures: int = 0
    delay_s: float = 0.0
    until: float = 0.0


class AttemptThrottle:
    """Failures per client key, with the time each client may try again. Memory is bounded: past `max_clients`
    the client that failed least recently is forgotten (a flood of addresses cannot grow it without end)."""

    def __init__(
        self,
        clock: Callable[[], float],
        free_attempts: int = 5,
        base_delay_s: float = 1.0,
        max_delay_s: float = 300.0,
        max_clients: int = 10_000,
    ) -> None:
        self._clock = clock
        self._free_attempts = free_attempts
        self._base_delay_s = base_delay_s
        self._max_delay_s = max_delay_s
        self._max_clients = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()

    def wait_s(self, client: str) -> float:
        """0.0 when `client` may try now, else the seconds until it may."""
        record = self._clients.get(client)
        return 0.0 if record is None else max(0.0, record.until - self._clock())

    def failed(self, client: str) -> None:
        """Past the free attempts, each failure doubles the wait (from base_delay_s up to max_delay_s)."""
        record = self._clients.pop(client, None) or _Client()
        record.failures += 1
        if record.failures > self._free_attempts:
            # Doubling the last delay, not computing 2**n: endless failures cannot overflow it.
            record.delay_s = min(self._max_delay_s, record.delay_s * 2 or self._base_delay_s)
            record.until = self._clock() + record.delay_s
        self._clients[client] = record
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        """Forget the client: the right secret ends its throttle."""
        self._clients.pop(client, None)

"""The service-wide rate limit (SENTIMENT_RATE_LIMIT), per client address, over every request that scores
text.

A request costs one unit when it comes in; a data-set start costs as many as the /predict/batch requests its
rows would take (rows / SENTIMENT_MAX_BATCH_SIZE), charged by the service as it learns the rows: the request
is admitted, and the client's next requests wait until the debt is paid (core/rate_budget.py). So a million
rows cost the same whether they come as batches or as a file."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from litestar import Request
from litestar.types import ASGIApp, Receive, Scope, Send

from sentiment.core.domain import RateLimited
from sentiment.core.rate_budget import RateBudget, RowCharge
from sentiment.services.datasets import RowsCharge

# Where the admitted request's charge for rows waits for its handler, in the request's state.
_CHARGE = "sentiment_row_charge"


class AddressRateLimit:
    """Takes a unit per scoring request from its client address's budget, or refuses it with 429."""

    def __init__(
        self,
        app: ASGIApp,
        budget: RateBudget,
        applies: Callable[[Request[Any, Any, Any]], bool],
        batch_size: int,
        unit: str,
    ) -> None:
        self._app = app
        self._budget = budget
        self._applies = applies
        self._batch_size = batch_size
        self._unit = unit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self._applies(Request(scope)):
            client = scope.get("client")
            address = client[0] if client else "127.0.0.1"
            wait_s = self._budget.take(address)
            if wait_s > 0:
                raise RateLimited(
                    f"rate limit reached for this client: {self._budget.limit} requests per {self._unit} "
                    f"that score text, a data-set start counting one per {self._batch_size:,} of its rows; "
                    "retry after the number of seconds in Retry-After",
                    math.ceil(wait_s),
                )
            scope.setdefault("state", {})[_CHARGE] = RowCharge(self._budget, address, self._batch_size)
        await self._app(scope, receive, send)


def row_charge(request: Request[Any, Any, Any]) -> RowsCharge | None:
    """What a data-set start tells its rows to, so they are charged to its client; None without a limit."""
    charge = request.scope.get("state", {}).get(_CHARGE)
    return charge if isinstance(charge, RowCharge) else None

"""Who may change the service: the admin token, compared in constant time and throttled per client, and what a
logged-in session keeps."""

from __future__ import annotations

import hashlib
import hmac

from sentiment.core.throttle import AttemptThrottle


class AccessService:
    def __init__(self, admin_token: str | None, throttle: AttemptThrottle) -> None:
        self._token = admin_token
        # Wrong tokens per client, shared by the bearer check and the login page: guessing is slowed on both.
        self.throttle = throttle

    @property
    def configured(self) -> bool:
        """False when no SENTIMENT_ADMIN_TOKEN is set: every admin action is then refused."""
        return self._token is not None

    def accepts(self, supplied: str) -> bool:
        return self._token is not None and hmac.compare_digest(supplied.encode(), self._token.encode())

    def verify(self, supplied: str, client: str) -> bool:
        """Whether `supplied` is the admin token, counted for `client`: a wrong one is a failure in its
        throttle, the right one clears it. Callers ask `throttle.wait_s` first: a waiting client's token is
        not even compared."""
        if self.accepts(supplied):
            self.throttle.succeeded(client)
            return True
        if self.configured:
            self.throttle.failed(client)
        return False

    def session_mark(self) -> str:
        """What a logged-in session remembers instead of the
        token: changing the token logs every session out."""
        if self._token is None:
            raise ValueError("no admin token is configured")
        return hashlib.sha256(b"sentiment-admin:" + self._token.encode()).hexdigest()

    def is_admin_mark(self, mark: object) -> bool:
        return (
            self._token is not None
            and isinstance(mark, str)
            and hmac.compare_digest(mark, self.session_mark())
        )

"""Faults injected on purpose (admin only) to show and test the failsafe: a model that fails or hangs."""

from __future__ import annotations

import threading
from typing import Literal

FaultMode = Literal["fail", "hang"]


class InjectedFault(RuntimeError):
    pass


class Fault:
    """Applied on the model's worker thread, so a hang really occupies the model like a stuck forward pass."""

    def __init__(self, mode: FaultMode, hang_s: float = 30.0) -> None:
        self.mode = mode
        self.hang_s = hang_s
        self._cleared = threading.Event()

    def apply(self) -> None:
        if self.mode == "fail":
            raise InjectedFault("injected fault: the model is set to fail")
        # Clearing the fault releases calls that are hanging on it.
        self._cleared.wait(self.hang_s)

    def clear(self) -> None:
        self._cleared.set()

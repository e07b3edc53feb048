"""Alert rules as plain logic, and the window of recent requests they read, with a fake clock."""

from sentiment.inference.stats import RecentWindow, WindowTotals
from sentiment.services.alert_rules import AlertMonitor, evaluate
from sentiment.services.settings import AlertRules

RULES = AlertRules(fallback_rate=0.2, latency_p95_ms=500, window_s=60, min_requests=10)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def totals(
    requests: int = 50, texts: int = 100, fallback: int = 0, p95: float | None = 100.0
) -> WindowTotals:
    return WindowTotals(requests, texts, fallback, p95)


def test_no_condition_holds_on_healthy_traffic() -> None:
    assert evaluate(totals(), None, RULES) == {
        "fallback_rate_high": None,
        "slow_inference": None,
        "database_down": None,
    }


def test_fallback_rate_above_the_threshold_raises_its_alert() -> None:
    conditions = evaluate(totals(fallback=21), None, RULES)
    assert conditions["fallback_rate_high"] is not None
    assert "21% of texts" in conditions["fallback_rate_high"].message
    assert evaluate(totals(fallback=20), None, RULES)["fallback_rate_high"] is None


def test_slow_p95_raises_its_alert_only_with_enough_requests() -> None:
    assert evaluate(totals(p95=501), None, RULES)["slow_inference"] is not None
    assert evaluate(totals(requests=9, p95=5_000), None, RULES)["slow_inference"] is None


def test_database_error_raises_a_critical_alert_naming_it() -> None:
    condition = evaluate(totals(), "ConnectionRefusedError: [Errno 111]", RULES)["database_down"]
    assert condition is not None and condition.severity == "critical"
    assert "Errno 111" in condition.message


def test_window_forgets_requests_older_than_its_length() -> None:
    clock = FakeClock()
    window = RecentWindow(60, clock, slices=6)
    window.record(texts=4, fallback_texts=4, latency_ms=900)
    clock.now += 30
    window.record(texts=1, fallback_texts=0, latency_ms=10)
    assert window.totals() == WindowTotals(2, 5, 4, 900)
    clock.now += 40
    assert window.totals() == WindowTotals(1, 1, 0, 10)
    clock.now += 60
    assert window.totals() == WindowTotals(0, 0, 0, None)


class RecordingAlerts:
    def __init__(self) -> None:
        self.changes: list[tuple[str, str]] = []

    def post_raise(self, key: str, kind: str, severity: str, message: str) -> None:
        self.changes.append(("raise", key))

    def post_resolve(self, key: str) -> None:
        self.changes.append(("resolve", key))


def test_monitor_raises_once_while_a_condition_holds_and_resolves_when_it_clears() -> None:
    clock = FakeClock()
    window = RecentWindow(60, clock)
    alerts = RecordingAlerts()
    monitor = AlertMonitor(RULES, window, alerts)  # type: ignore[arg-type]
    for _ in range(10):
        window.record(texts=1, fallback_texts=1, latency_ms=5)
    monitor.check(database_error=None)
    monitor.check(database_error="down")
    monitor.check(database_error=None)
    clock.now += 120
    monitor.check(database_error=None)
    assert alerts.changes == [
        ("raise", "fallback_rate_high"),
        ("raise", "database_down"),
        ("resolve", "database_down"),
        ("resolve", "fallback_rate_high"),
    ]

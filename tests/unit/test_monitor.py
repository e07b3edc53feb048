"""Alert rules as plain logic, and the window of recent requests they read, with a fake clock."""

from sentiment.inference.stats import ModelWindow, RecentWindow, WindowTotals
from sentiment.services.alert_rules import AlertMonitor, StorageState, evaluate
from sentiment.services.settings import AlertRules
from tests.clocks import FakeClock

RULES = AlertRules(fallback_rate=0.2, latency_p95_ms=500, window_s=60, min_requests=10)
HEALTHY = StorageState()


def totals(
    requests: int = 50, texts: int = 100, fallback: int = 0, p95: float | None = 100.0
) -> WindowTotals:
    return WindowTotals(requests, texts, fallback, p95)


def test_no_condition_holds_on_healthy_traffic() -> None:
    assert evaluate(totals(), HEALTHY, RULES) == {
        "fallback_rate_high": None,
        "slow_inference": None,
        "database_down": None,
        "schema_behind": None,
        "storage_failing": None,
        "storage_backlog": None,
        "journal_failing": None,
    }


def test_fallback_rate_above_the_threshold_raises_its_alert() -> None:
    conditions = evaluate(totals(fallback=21), HEALTHY, RULES)
    assert conditions["fallback_rate_high"] is not None
    assert "21% of texts" in conditions["fallback_rate_high"].message
    assert evaluate(totals(fallback=20), HEALTHY, RULES)["fallback_rate_high"] is None


def test_slow_p95_raises_its_alert_only_with_enough_requests() -> None:
    assert evaluate(totals(p95=501), HEALTHY, RULES)["slow_inference"] is not None
    assert evaluate(totals(requests=9, p95=5_000), HEALTHY, RULES)["slow_inference"] is None


def test_a_database_that_does_not_answer_raises_a_critical_alert_naming_why() -> None:
    down = StorageState(unreachable="ConnectionRefusedError: [Errno 111]", pending=12)
    condition = evaluate(totals(), down, RULES)["database_down"]
    assert condition is not None and condition.severity == "critical"
    assert "Errno 111" in condition.message and "12 predictions wait" in condition.message


def test_a_full_disk_is_writes_failing_though_the_database_answers() -> None:
    full = StorageState(write_error="OperationalError: database or disk is full", pending=3)
    conditions = evaluate(totals(), full, RULES)
    assert conditions["database_down"] is None
    failing = conditions["storage_failing"]
    assert failing is not None and failing.severity == "critical"
    assert "writes fail (OperationalError: database or disk is full); 3 predictions wait" in failing.message


def test_a_schema_behind_the_code_has_its_own_alert_naming_the_fix() -> None:
    behind = StorageState(schema="schema at revision 0004, expected 0005: run `sentiment db upgrade`")
    conditions = evaluate(totals(), behind, RULES)
    assert (
        conditions["schema_behind"] is not None
        and "sentiment db upgrade" in conditions["schema_behind"].message
    )
    assert conditions["storage_failing"] is None  # its failed writes are the schema's, said once


def test_a_backlog_past_half_the_room_warns_before_predictions_are_refused() -> None:
    assert evaluate(totals(), StorageState(backlog_share=0.49), RULES)["storage_backlog"] is None
    backlog = evaluate(totals(), StorageState(pending=50_000, backlog_share=0.5), RULES)["storage_backlog"]
    assert backlog is not None and backlog.severity == "warning"
    assert backlog.message.startswith(
        "50,000 predictions wait in the journal: 50% of the room for them is used"
    )


def test_a_journal_that_cannot_write_has_its_own_alert_whatever_the_database_does() -> None:
    full = StorageState(journal_error="OSError: No space left on device", unreachable="refused")
    conditions = evaluate(totals(), full, RULES)
    journal = conditions["journal_failing"]
    assert journal is not None and journal.severity == "critical"
    assert "No space left on device" in journal.message and "refused with 503" in journal.message
    assert conditions["database_down"] is not None  # both are said: each has its own fix


def test_window_forgets_requests_older_than_its_length() -> None:
    clock = FakeClock()
    window = RecentWindow(60, clock, slices=6)
    window.record("a", texts=4, fallback_texts=4, latency_ms=900)
    clock.now += 30
    window.record("b", texts=1, fallback_texts=0, latency_ms=10)
    # 900 ms for 4 texts: 225 ms per text
    assert window.totals() == WindowTotals(
        2, 5, 4, 225, {"a": ModelWindow(4, 4, 225), "b": ModelWindow(1, 0, 10)}
    )
    clock.now += 40
    assert window.totals() == WindowTotals(1, 1, 0, 10, {"b": ModelWindow(1, 0, 10)})
    clock.now += 60
    assert window.totals() == WindowTotals(0, 0, 0, None)


def test_large_batches_slow_as_a_whole_do_not_look_like_a_slow_model() -> None:
    clock = FakeClock()
    batches, singles = RecentWindow(60, clock), RecentWindow(60, clock)
    for _ in range(10):
        batches.record("m", texts=256, fallback_texts=0, latency_ms=3_000)  # 11.7 ms per text
        singles.record("m", texts=1, fallback_texts=0, latency_ms=600)
    assert evaluate(batches.totals(), HEALTHY, RULES)["slow_inference"] is None
    slow = evaluate(singles.totals(), HEALTHY, RULES)["slow_inference"]
    assert slow is not None and slow.message.startswith("p95 latency per text 600 ms in the last 60 s")


def test_alert_texts_name_the_models_behind_them() -> None:
    clock = FakeClock()
    window = RecentWindow(60, clock)
    for _ in range(10):
        window.record("minilm-sst2", texts=10, fallback_texts=8, latency_ms=10)
        window.record("minilm-tweets3", texts=1, fallback_texts=0, latency_ms=900)
        window.record("vader", texts=10, fallback_texts=0, latency_ms=1)
    conditions = evaluate(window.totals(), HEALTHY, RULES)
    fallback, slow = conditions["fallback_rate_high"], conditions["slow_inference"]
    assert fallback is not None and fallback.message.endswith(
        "; asked for minilm-sst2: 80% (80 of 100 texts)"
    )
    assert slow is not None and slow.message.endswith("; slowest minilm-tweets3: p95 900 ms")


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
        window.record("m", texts=1, fallback_texts=1, latency_ms=5)
    monitor.check(HEALTHY)
    monitor.check(StorageState(unreachable="down"))
    monitor.check(HEALTHY)
    clock.now += 120
    monitor.check(HEALTHY)
    assert alerts.changes == [
        ("raise", "fallback_rate_high"),
        ("raise", "database_down"),
        ("resolve", "database_down"),
        ("resolve", "fallback_rate_high"),
    ]

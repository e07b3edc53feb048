"""The per-address rate budget: a burst of `limit`, then one per period / limit, and debt charged after the
fact that carries past the period."""

from __future__ import annotations

import pytest

from sentiment.core.rate_budget import PRUNE_FLOOR, RateBudget, RowCharge, batches
from tests.clocks import FakeClock


def test_limit_requests_fit_in_a_burst_then_one_each_period_over_limit() -> None:
    clock = FakeClock(0.0)
    budget = RateBudget(3, 60.0, clock)
    assert [budget.take("a") for _ in range(4)] == [0.0, 0.0, 0.0, 20.0]
    clock.advance(19.5)
    assert budget.take("a") == 0.5  # a refused request takes nothing: the wait only shrinks
    clock.advance(0.5)
    assert [budget.take("a"), budget.take("a")] == [0.0, 20.0]


def test_a_limit_that_does_not_divide_the_period_still_admits_exactly_limit() -> None:
    budget = RateBudget(7, 60.0, FakeClock(0.0))
    answers = [budget.take("a") for _ in range(8)]
    assert answers[:7] == [0.0] * 7 and answers[7] > 0


def test_each_address_has_its_own_budget() -> None:
    budget = RateBudget(1, 1.0, FakeClock(0.0))
    assert [budget.take("a"), budget.take("b"), budget.take("a")] == [0.0, 0.0, 1.0]


def test_charged_debt_is_waited_out_past_the_period() -> None:
    clock = FakeClock(0.0)
    budget = RateBudget(3, 60.0, clock)
    assert budget.take("a") == 0.0
    budget.charge("a", 9)  # ten units in all: 200 s of budget at 20 s each
    assert budget.take("a") == 160.0  # a fixed window would have forgotten the debt after 60 s
    clock.advance(160.0)
    assert budget.take("a") == 0.0


def test_addresses_whose_budget_is_whole_again_are_forgotten() -> None:
    clock = FakeClock(0.0)
    budget = RateBudget(10, 60.0, clock)
    for n in range(PRUNE_FLOOR - 1):
        budget.take(f"10.0.{n // 256}.{n % 256}")
    assert len(budget) == PRUNE_FLOOR - 1
    clock.advance(6.0)  # each spent one unit (6 s): whole again
    budget.take("spent")
    assert len(budget) == 1


@pytest.mark.parametrize(("rows", "batch_size", "expected"), [(0, 256, 1), (256, 256, 1), (257, 256, 2)])
def test_rows_count_as_the_batch_requests_they_would_take(rows: int, batch_size: int, expected: int) -> None:
    assert batches(rows, batch_size) == expected


def test_a_row_charge_charges_only_what_the_request_does_not_already_pay() -> None:
    clock = FakeClock(0.0)
    budget = RateBudget(10, 60.0, clock)  # 6 s a unit
    assert budget.take("a") == 0.0  # the start request: one unit
    charge = RowCharge(budget, "a", batch_size=100)
    charge(100)  # one batch: the request's own unit
    charge(250)  # three batches: two more
    charge(250)  # known already: nothing more
    assert budget.take("a") == 0.0  # a next request: the 4th unit of 10
    charge(2000)  # the full count, 20 batches: 17 more, 21 units in all (126 s of budget)
    assert budget.take("a") == 126.0 + 6.0 - 60.0

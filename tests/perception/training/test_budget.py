"""TimeBudget: when a wall-time budget is spent, and the steps the schedule plans for under it."""

import pytest

from perception.training.budget import MIN_STEPS_TO_PROJECT, TimeBudget


class Clock:
    """A clock the test moves by hand [s]."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_limit_is_never_spent_and_keeps_the_planned_steps():
    clock = Clock()
    budget = TimeBudget(0, clock=clock)
    clock.now += 1e9
    assert not budget.spent()
    assert budget.total_steps(500, planned=1000) == 1000


def test_spent_once_the_seconds_have_passed():
    clock = Clock()
    budget = TimeBudget(60, clock=clock)
    clock.now += 59.9
    assert not budget.spent()
    clock.now += 0.1
    assert budget.spent()


def test_the_schedule_plans_for_the_steps_that_fit_at_this_pace():
    clock = Clock()
    budget = TimeBudget(60, start_step=200, clock=clock)  # a resumed run: 200 steps before this call
    clock.now += 15
    assert budget.total_steps(200 + MIN_STEPS_TO_PROJECT - 1, planned=10_000) == 10_000  # too early to say
    assert budget.total_steps(250, planned=10_000) == 200 + 200  # 50 steps in 15 s: 200 in 60 s
    assert budget.total_steps(250, planned=300) == 300  # the epochs end first
    clock.now += 100  # past the budget: the schedule is at its end
    assert budget.total_steps(260, planned=10_000) == 261


def test_a_negative_budget_is_refused():
    with pytest.raises(ValueError, match="max_seconds"):
        TimeBudget(-1)

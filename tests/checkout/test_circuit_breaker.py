"""The payment provider's circuit breaker as a state machine (no database, a stepped clock)."""

from __future__ import annotations

import pytest

from serving.services.checkout.payments import ProviderError, ProviderTimeout, ProviderUnavailable
from serving.services.checkout.payments.circuit_breaker import CircuitBreaker, CircuitOpen
from serving.services.checkout.payments.guarded import GuardedProvider


class SteppedClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def breaker(clock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=clock)


def test_opens_after_n_consecutive_failures_only(breaker):
    breaker.failure()
    breaker.failure()
    breaker.success()  # an answer in between resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.state == "closed"
    breaker.acquire()
    breaker.failure()
    assert breaker.state == "open"


def test_open_refuses_with_the_rest_of_the_cool_down(breaker, clock):
    for _ in range(3):
        breaker.failure()
    clock.now += 4
    with pytest.raises(CircuitOpen) as refused:
        breaker.acquire()
    assert refused.value.retry_after == pytest.approx(6)
    assert breaker.refusing_for() == pytest.approx(6)
    assert isinstance(refused.value, ProviderUnavailable)


def test_half_open_lets_one_probe_through_and_its_success_closes(breaker, clock):
    for _ in range(3):
        breaker.failure()
    clock.now += 10
    assert breaker.state == "half_open"
    assert breaker.refusing_for() == 0
    breaker.acquire()  # the probe
    with pytest.raises(CircuitOpen):
        breaker.acquire()  # a second caller while the probe is out
    assert breaker.refusing_for() > 0
    breaker.success()
    assert breaker.state == "closed"
    breaker.acquire()
    assert breaker.failures == 0


def test_a_failed_probe_reopens_for_a_full_cool_down(breaker, clock):
    for _ in range(3):
        breaker.failure()
    clock.now += 10
    breaker.acquire()
    breaker.failure()
    assert breaker.state == "open"
    clock.now += 9
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    clock.now += 1
    assert breaker.state == "half_open"


def test_a_probe_that_ends_in_our_own_error_gives_the_slot_back(breaker, clock):
    for _ in range(3):
        breaker.failure()
    clock.now += 10
    breaker.acquire()
    breaker.release()
    breaker.acquire()  # another probe may go
    assert breaker.state == "half_open"


class ScriptedProvider:
    """A provider whose next answers are scripted: an exception to raise or a value."""

    name = "scripted"

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls = 0

    def find_intent(self, key):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer


def test_guard_counts_outages_but_not_refusals(clock):
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=10, clock=clock)
    inner = ScriptedProvider(
        ProviderTimeout("slow"),
        ProviderError("no such intent"),  # an answer: resets the count
        ProviderUnavailable("down"),
        ProviderTimeout("slow"),
    )
    guarded = GuardedProvider(inner, breaker)
    expected = [(ProviderTimeout, 1), (ProviderError, 0), (ProviderUnavailable, 1)]
    for error, failures in expected:
        with pytest.raises(error):
            guarded.find_intent("k")
        assert (breaker.state, breaker.failures) == ("closed", failures)
    with pytest.raises(ProviderTimeout):
        guarded.find_intent("k")
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        guarded.find_intent("k")
    assert inner.calls == 4  # refused without calling the provider


def test_guard_rejects_a_threshold_below_one():
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0, reset_seconds=1)

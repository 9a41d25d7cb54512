"""GitHub's primary limit per installation (pure): headers and times in, a delay out."""

from __future__ import annotations

import pytest

from bot.primary_limit import PrimaryLimit


def test_the_primary_limit_costs_nothing_far_from_zero() -> None:
    primary = PrimaryLimit()
    headers = {"x-ratelimit-remaining": "4000", "x-ratelimit-reset": "4600"}
    primary.observe(1, headers | {"x-ratelimit-limit": "5000"}, 1000.0)
    assert primary.delay(1, 1000.0) == 0.0


def test_near_zero_calls_are_spread_until_the_reset() -> None:
    primary = PrimaryLimit()
    headers = {"x-ratelimit-limit": "5000", "x-ratelimit-remaining": "100"}
    primary.observe(1, headers | {"x-ratelimit-reset": "2000"}, 1000.0)
    first = primary.delay(1, 1000.0)
    second = primary.delay(1, 1000.0)
    assert first == 0.0
    assert second == pytest.approx(10.0)  # 1000 s left for 100 calls
    assert primary.delay(2, 1000.0) == 0.0  # another installation has its own


def test_at_zero_calls_wait_for_the_reset_then_go() -> None:
    primary = PrimaryLimit()
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1300"}
    primary.observe(1, headers, 1000.0)
    assert primary.delay(1, 1000.0) == 300.0
    assert primary.delay(1, 1300.0) == 0.0


def test_other_resources_do_not_slow_the_core_calls() -> None:
    primary = PrimaryLimit()
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1300"}
    primary.observe(1, headers | {"x-ratelimit-resource": "search"}, 1000.0)
    assert primary.delay(1, 1000.0) == 0.0

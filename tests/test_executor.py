"""``model.runner.execute``, the one executor under ``run_many`` and ``nrmsim sweep``."""

from __future__ import annotations

import operator
from collections.abc import Iterator

import pytest

from model.runner import execute


@pytest.mark.parametrize("mode,workers", [("serial", 1), ("processes", 1), ("processes", 2)])
def test_execute_returns_every_item_once_and_draws_items_lazily(mode: str, workers: int) -> None:
    """Catches: an item lost, run twice or reported at another position (``run_many`` puts
    results back in order by position), and an executor that drains the items before the
    first result: the sweep makes each task when it is drawn, with the chunk size learnt from
    the results so far, so at most two items per worker may be ahead of the results seen."""
    drawn = 0
    ahead: list[int] = []

    def items() -> Iterator[tuple[int, int]]:
        nonlocal drawn
        for i in range(11):
            drawn += 1
            yield (i, 3)

    assert list(execute(_power, [], mode=mode, workers=workers)) == []
    seen: dict[int, int] = {}
    for position, result in execute(_power, items(), mode=mode, workers=workers):
        ahead.append(drawn - len(seen) - 1)  # items drawn but not yet reported
        assert position not in seen
        seen[position] = result
    assert seen == {i: i**3 for i in range(11)}
    assert max(ahead) <= (0 if mode == "serial" else 2 * workers)


def _power(item: tuple[int, int]) -> int:
    """A picklable function of one item."""
    return int(operator.pow(*item))


def test_execute_refuses_an_unknown_mode() -> None:
    """Catches: a typo in a mode silently running in this process."""
    with pytest.raises(ValueError, match="unknown mode 'thread'"):
        list(execute(_power, [(1, 1)], mode="thread"))

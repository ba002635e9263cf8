"""The dynamic farm's dispatch order and chunk rule when tasks carry cost estimates."""
from __future__ import annotations

import numpy as np

from hmmpar.core.farm import _queue_order


def test_queue_is_longest_first_ties_by_task_id():
    rows = np.zeros(6, dtype=[("task_id", "i8"), ("cost", "f8")])
    rows["task_id"] = [5, 3, 9, 1, 4, 0]
    rows["cost"] = [1.0, 3.0, 1.0, 3.0, 0.0, 2.0]
    order, cum = _queue_order(rows)
    assert rows["task_id"][order].tolist() == [1, 3, 0, 5, 9, 4]
    assert cum.tolist() == [0.0, 3.0, 6.0, 8.0, 9.0, 10.0, 10.0]


def test_no_cost_field_keeps_gathered_order():
    rows = np.zeros(4, dtype=[("task_id", "i8"), ("x", "f8")])
    assert _queue_order(rows) == (None, None)

import numpy as np

from hmmpar.core.rng import task_rng, task_seeds


def test_same_keys_same_stream_and_any_key_changes_it():
    a = task_rng(1, 2, 3).standard_normal(5)
    assert np.array_equal(a, task_rng(1, 2, 3).standard_normal(5))
    for keys in [(2, 2, 3), (1, 3, 3), (1, 2, 4)]:
        assert not np.array_equal(a, task_rng(*keys).standard_normal(5))
    assert not np.array_equal(a, task_rng(1, 2, 3, attempt=1).standard_normal(5))


def test_task_seeds_are_per_task_and_order_free():
    ids = np.array([5, 1, 9])
    s = task_seeds(7, 0, ids)
    assert s.dtype == np.uint64 and len(set(s.tolist())) == 3
    assert np.array_equal(task_seeds(7, 0, ids[::-1]), s[::-1])

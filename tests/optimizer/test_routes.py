"""Candidate trips: exact tours by Held-Karp against permutations, distances."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np

from optimizer.routes import haversine_km, subset_tours, tour_order


def _brute_tour(d, members):
    best = math.inf
    for perm in itertools.permutations(members):
        path = [0, *perm, 0]
        best = min(best, sum(d[a][b] for a, b in zip(path, path[1:], strict=False)))
    return best


def test_subset_tours_match_permutations_on_asymmetric_matrix():
    """Every subset's tour cost equals the best permutation, even for an asymmetric matrix
    that breaks the triangle inequality."""
    rnd = random.Random(3)
    n = 6
    d = np.array([[0 if i == j else rnd.randint(1, 50) for j in range(n + 1)]
                  for i in range(n + 1)], dtype=float)
    masks, costs, _ = subset_tours(d)
    assert len(masks) == 2**n - 1
    for mask, cost in zip(masks.tolist(), costs.tolist(), strict=True):
        members = [k + 1 for k in range(n) if (mask >> k) & 1]
        assert cost == _brute_tour(d, members)
        order = tour_order(d, mask)
        path = [0, *order, 0]
        assert sum(d[a][b] for a, b in zip(path, path[1:], strict=False)) == cost


def test_capacity_filter_keeps_exactly_the_feasible_subsets():
    """With weights and a capacity, exactly the subsets within capacity are returned."""
    d = np.ones((6, 6)) - np.eye(6)
    w = np.array([3, 4, 5, 6, 7])
    masks, _, _ = subset_tours(d, w, 10)
    expect = {m for m in range(1, 32) if sum(w[k] for k in range(5) if (m >> k) & 1) <= 10}
    assert set(masks.tolist()) == expect


def test_haversine_known_distance():
    """One degree of latitude is about 111.2 km."""
    assert abs(haversine_km(28.0, 119.0, 29.0, 119.0) - 111.19) < 0.05

"""Arrays in and out of MathOpt's protos: what goes in comes back, and the ids of a sparse
vector are taken as 0..n-1 only when the vector is full."""

from __future__ import annotations

import numpy as np
import pytest
from ortools.math_opt import sparse_containers_pb2

from ampc.optimizer.solve import _floats, _ids, _ints, _put

pytestmark = pytest.mark.unit


def vector(ids: list[int], values: list[float]) -> sparse_containers_pb2.SparseDoubleVectorProto:
    out = sparse_containers_pb2.SparseDoubleVectorProto()
    _put(out.ids, np.asarray(ids, np.int64))
    _put(out.values, np.asarray(values))
    return out


def test_arrays_round_trip_through_a_proto() -> None:
    v = vector([0, 3, 7], [1.5, -2.0, 1e300])
    assert list(v.ids) == [0, 3, 7]
    assert _ints(v.ids).dtype == np.int64
    assert _ints(v.ids).tolist() == [0, 3, 7]
    assert _floats(v.values).tolist() == [1.5, -2.0, 1e300]


@pytest.mark.parametrize(
    ("ids", "n"),
    [
        ([0, 1, 2, 3], 4),  # full: taken as 0..n-1 without reading the ids
        ([0, 2, 5], 6),  # sparse
        ([1, 2, 3], 5),  # sparse, ending below n - 1
        ([0, 1, 4], 5),  # sparse, ending at n - 1
        ([], 0),
        ([], 3),
    ],
)
def test_ids_are_the_vectors_own(ids: list[int], n: int) -> None:
    got = _ids(vector(ids, [1.0] * len(ids)).ids, n)
    assert got.dtype == np.int64
    assert got.tolist() == ids

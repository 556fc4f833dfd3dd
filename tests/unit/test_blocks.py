"""Blocks without Spark: the float64 wire format round-trips bit for bit; Arrow → block counts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from sparkml_jobs.io import blocks as B


def bits(a: np.ndarray) -> np.ndarray:
    """The raw float64 bits: NaN payloads and the sign of zero compare too."""
    return np.ascontiguousarray(a, dtype=np.float64).view(np.uint64)


@pytest.mark.parametrize(("rows", "cols"), [(0, 3), (1, 1), (7, 4), (300, 12)])
def test_encode_decode_round_trip_is_bit_exact(rng, rows, cols):
    values = rng.normal(size=(rows, cols)) * 10.0 ** rng.integers(-300, 300, size=(rows, cols))
    if rows >= 7:
        values[0, 0], values[1, 0], values[2, 0] = np.nan, np.inf, -np.inf
        values[3, 0], values[4, 0] = -0.0, 5e-324  # a negative zero and the smallest subnormal
        values[5, 0] = np.frombuffer(np.uint64(0x7FF8_0000_DEAD_BEEF).tobytes(), np.float64)[0]
    nulls = rng.integers(0, 2**40, size=cols)  # counts stay exact up to 2**53
    nonfinite = rng.integers(0, 1000, size=cols)
    payload = B.encode_block(values, nulls, nonfinite, ragged=2**50 + 1)

    assert len(payload) == 8 * (3 + 2 * cols + rows * cols)
    block = B.decode_block(bytearray(payload))  # Spark hands Python workers a bytearray
    assert block.values.shape == (rows, cols) and block.values.dtype == np.float64
    np.testing.assert_array_equal(bits(block.values), bits(values))
    assert block.nulls.dtype == block.nonfinite.dtype == np.int64
    np.testing.assert_array_equal(block.nulls, nulls)
    np.testing.assert_array_equal(block.nonfinite, nonfinite)
    assert block.ragged == 2**50 + 1


def test_encode_accepts_any_layout_and_dtype(rng):
    """A transposed (Fortran-ordered) view or float32 input encodes as its row-major values."""
    base = rng.normal(size=(5, 8))
    for values in (base.T, base[::2, 1::3], base.astype(np.float32)):
        zeros = np.zeros(values.shape[1], np.int64)
        block = B.decode_block(B.encode_block(values, zeros, zeros, 0))
        np.testing.assert_array_equal(block.values, np.asarray(values, dtype=np.float64))


def test_block_from_arrays_counts_non_finite_cells():
    values = np.array([[1.0, np.nan], [np.inf, 2.0], [-np.inf, np.nan]])
    block = B.block_from_arrays(values)
    assert block.nulls.tolist() == [0, 0] and block.nonfinite.tolist() == [2, 2]
    assert block.ragged == 0 and block.values.flags.c_contiguous


def test_arrow_batches_to_block_separates_nulls_from_nan_and_counts_ragged_rows():
    schema = pa.schema([("a", pa.float64()), ("b", pa.float64()), (B.RAGGED, pa.int32())])
    batches = [
        pa.record_batch([[1.0, None, 3.0], [np.nan, 2.0, np.inf], [0, 1, 0]], schema=schema),
        pa.record_batch([[None, 5.0], [6.0, 7.0], [1, 1]], schema=schema),
    ]
    block = B.batches_to_block(batches, ["b", "a"], has_ragged=True)  # the layout's order
    expected = np.array(
        [[np.nan, 1.0], [2.0, np.nan], [np.inf, 3.0], [6.0, np.nan], [7.0, 5.0]], dtype=np.float64
    )
    np.testing.assert_array_equal(block.values, expected)
    assert block.nulls.tolist() == [0, 2]  # 'a' had two nulls; 'b' none
    assert block.nonfinite.tolist() == [2, 0]  # 'b': one NaN and one inf, not nulls
    assert block.ragged == 3


def test_group_batches_reaches_the_row_target_and_skips_empty_batches():
    schema = pa.schema([("a", pa.float64())])
    sizes = [3, 0, 4, 2, 0, 6, 1]
    batches = [pa.record_batch([np.arange(n, dtype=float)], schema=schema) for n in sizes]
    groups = list(B.group_batches(iter(batches), block_rows=5))
    assert [[b.num_rows for b in group] for group in groups] == [[3, 4], [2, 6], [1]]


def test_counts_merge_is_the_sum_of_the_blocks():
    blocks = [
        B.Block(
            values=np.array([[1.0, -2.0], [3.0, 4.0]]),
            nulls=np.array([1, 0]),
            nonfinite=np.array([0, 2]),
            ragged=1,
        ),
        B.Block(values=np.array([[-1.0, 0.0]]), nulls=np.array([0, 3]), nonfinite=np.array([5, 0])),
    ]
    total = B.Counts.zero(2)
    for block in blocks:
        total = total.merge(B.Counts.of_block(block, weight_index=1))
    assert total.rows == 3 and total.ragged == 1 and total.negative_weights == 1
    assert total.nulls.tolist() == [1, 3] and total.nonfinite.tolist() == [5, 2]

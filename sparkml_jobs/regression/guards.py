"""Pure numpy: can the statistics of a fit be trusted? One clear line when they cannot.

float64 holds magnitudes up to ~1.8e308 and down to ~2.2e-308. Sums of squares of values above
~1e154 overflow to ``inf`` (and a mean of values near 1e308 already does); squares of differences
below ~1e-154 vanish. Either way the statistics say nothing true about the column — it looks
"constant", or the standard errors become infinite and t = 0, p = 1 — so the fit stops and names
the column, its magnitude and the cure (rescale it). Zero total weight is refused the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparkml_jobs.errors import InputError
from sparkml_jobs.regression.stats import SufficientStats

# A column whose values differ by less than this has squared differences within ~8 orders of
# float64's smallest normal number: the sums of squares lose their digits or vanish.
UNDERFLOW_SPREAD = 1e-150


@dataclass(frozen=True, slots=True)
class ColumnRange:
    """Per-column minimum and maximum over some rows (a monoid: :meth:`merge`)."""

    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def zero(cls, width: int) -> ColumnRange:
        return cls(np.full(width, np.inf), np.full(width, -np.inf))

    @classmethod
    def of_block(cls, values: np.ndarray) -> ColumnRange:
        if len(values) == 0:
            return cls.zero(values.shape[1])
        return cls(values.min(axis=0), values.max(axis=0))

    def merge(self, other: ColumnRange) -> ColumnRange:
        return ColumnRange(np.minimum(self.lo, other.lo), np.maximum(self.hi, other.hi))

    def magnitude(self, j: int) -> float:
        """Largest absolute value of column ``j`` (0 when no rows were seen)."""
        if self.hi[j] < self.lo[j]:
            return 0.0
        return float(max(abs(self.lo[j]), abs(self.hi[j])))


def check_statistics(
    stats: SufficientStats,
    names: list[str],
    *,
    weight: str | None = None,
    ranges: ColumnRange | None = None,
    source: str = "",
    whole: bool = True,
) -> None:
    """Raise :class:`InputError` when the statistics of ``[x, y]`` cannot be trusted.

    Parameters
    ----------
    stats : SufficientStats
        Merged statistics of the features and the label (``names``, in that order).
    names : list of str
        Feature names then the label's.
    weight : str, optional
        Name of the weight column, if any (its range, when known, follows the label's).
    ranges : ColumnRange, optional
        Minimum and maximum of every column (features, label, weight), for the message and for
        telling underflow from a truly constant column.
    source : str
        Where the rows came from, for the message.
    whole : bool
        False for a part that is merged into (or subtracted from) other statistics, as in an
        update: only overflow is checked, since zero weight or a tiny spread in the part alone
        says nothing about the whole.
    """
    where = f"{source}: " if source else ""
    if whole and stats.n == 0:
        raise InputError(f"{where}no rows left to fit")
    if whole and stats.w_sum <= 0:  # (weights are checked non-negative when read)
        raise InputError(
            f"{where}weight column '{weight}': weights sum to zero, so no row counts; "
            "give some rows a positive weight"
        )
    if not np.isfinite(stats.w_sum):
        mag = ranges.magnitude(len(names)) if ranges is not None else float("inf")
        raise InputError(
            f"{where}weight column '{weight}': values up to {mag:.3g} overflow the sum of "
            "weights; rescale it"
        )
    diag = stats.diagonal()
    for j, name in enumerate(names):
        mag = ranges.magnitude(j) if ranges is not None else float("nan")
        if not (np.isfinite(stats.mean[j]) and np.isfinite(diag[j])):
            size = f"values up to {mag:.3g}" if np.isfinite(mag) else "its values"
            raise InputError(
                f"{where}column '{name}': {size} overflow the sums of squares; rescale it"
            )
        if whole and ranges is not None and 0 < ranges.hi[j] - ranges.lo[j] < UNDERFLOW_SPREAD:
            raise InputError(
                f"{where}column '{name}': values of magnitude {mag:.3g} that differ by only "
                f"{ranges.hi[j] - ranges.lo[j]:.3g} underflow the sums of squares; rescale it"
            )
    j = stats.nonfinite_column()
    if j is not None:  # a cross-product overflowed alone (rounding)
        raise InputError(f"{where}column '{names[j]}': its cross-products overflow; rescale it")


def check_fitted(
    intercept: float,
    coefficients: np.ndarray,
    kept: np.ndarray,
    std_errors: list[float | None],
    df_resid: int,
    names: list[str],
) -> None:
    """Last line of defence: never hand back a model with non-finite numbers where numbers are
    due, nor with coefficients pushed out of float64's normal range (subnormal: digits lost).

    ``std_errors`` has the intercept's first when ``len(std_errors) > len(coefficients)``.
    """
    beta = np.abs(coefficients[kept])
    tiny = np.finfo(np.float64).tiny
    bad = not np.isfinite(intercept) or not np.isfinite(beta).all()
    if df_resid > 0:
        se = std_errors[len(std_errors) - len(coefficients) :]
        bad = bad or any(se[j] is None for j in np.flatnonzero(kept))
        bad = bad or (len(std_errors) > len(coefficients) and std_errors[0] is None)
    if bad:
        raise InputError(
            "the fit produced non-finite estimates or standard errors (its sums overflow "
            "float64); rescale the columns"
        )
    small = [names[j] for j in np.flatnonzero(kept) if 0 < abs(coefficients[j]) < tiny]
    if small:
        raise InputError(
            f"column '{small[0]}': its coefficient is below float64's normal range (~1e-308): "
            "the label's and this column's scales differ too much; rescale them"
        )

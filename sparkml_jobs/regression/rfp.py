"""Pure numpy/scipy: a symmetric matrix in LAPACK's rectangular full packed (RFP) format.

RFP keeps the upper triangle of an ``n × n`` symmetric matrix in ``n (n + 1) / 2`` numbers, as
the packed triangle does, but as one dense Fortran array of ``lda × (n − s)`` (``s = n // 2``;
``lda = n + 1`` for even ``n``, ``n`` for odd) made of two triangles and a square, so LAPACK
factors, solves and inverts it with level-3 BLAS (``dpftrf`` / ``dpftrs`` / ``dpftri``) at about
the speed of the full matrix, in half its memory: at 8,192 columns 268 MB, not 537 MB.

Layout (``TRANSR='N'``, ``UPLO='U'``; Gustavson, Waśniewski, Dongarra & Langou, ACM TOMS 37(2),
2010; checked against LAPACK's ``dtpttf`` in the tests): column ``c`` of the array holds

* in rows ``0 … s + c``, column ``s + c`` of the upper triangle: ``A[0 : s+c+1, s+c]``;
* in the rows below, row ``c`` of the leading triangle: ``A[c, c : s]``.

Here the array is a C-ordered ``(n − s) × lda`` matrix ``F`` whose row ``c`` is that column.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

PANEL = 256  # columns of the source read at a time (one transposed copy of ``n × PANEL``),
PANEL_SHARE = 64  # and at most this fraction of them: the copy stays ~1/64 of the matrix


def _shape(n: int) -> tuple[int, int, int]:
    """``(s, lda, columns)`` of the RFP array of order ``n``."""
    s = n // 2
    return s, (n + 1 if n % 2 == 0 else n), n - s


def rows(arf: np.ndarray, n: int) -> np.ndarray:
    """The RFP array as its C-ordered ``(columns, lda)`` view ``F`` (no copy)."""
    s, lda, cols = _shape(n)
    return arf.reshape(cols, lda)


def from_upper(
    full: np.ndarray,
    n: int,
    scale: np.ndarray,
    shift: tuple[float, np.ndarray] | None = None,
) -> np.ndarray:
    """RFP of ``D⁻¹ (A + w m mᵀ) D⁻¹``, ``A`` the leading ``n × n`` block of the C-ordered
    ``full`` (only its upper triangle is read), ``D = diag(scale)``, ``shift = (w, m)`` or none.

    Each entry is computed as the full path computes it (``a + w·(mᵢ·mⱼ)``, then divided by
    ``dᵢ·dⱼ``); the source is read a panel of columns at a time, transposed, so every column of
    the upper triangle is a contiguous row.
    """
    s, lda, cols = _shape(n)
    arf = np.empty(n * (n + 1) // 2)
    f = rows(arf, n)
    entries = _Entries(scale, shift)
    for c in range(cols):  # row c of the leading triangle, columns c … s − 1 (contiguous)
        f[c, s + c + 1 :] = entries(full[c, c:s], c, c)
    width = max(8, min(PANEL, n // PANEL_SHARE))
    for j0 in range(s, n, width):  # columns s … n − 1 of the upper triangle, rows 0 … j
        j1 = min(n, j0 + width)
        panel = np.ascontiguousarray(full[:j1, j0:j1].T)
        for j in range(j0, j1):
            f[j - s, : j + 1] = entries(panel[j - j0, : j + 1], j, 0)
    return arf


def from_packed(
    packed: np.ndarray,
    offsets: np.ndarray,
    n: int,
    scale: np.ndarray,
    shift: tuple[float, np.ndarray] | None = None,
) -> np.ndarray:
    """:func:`from_upper` of a matrix kept as its packed upper triangle (column ``j``, rows
    ``0 … j``, at ``offsets[j]``; its leading ``n × n`` block is the first ``n`` columns):
    the same entries, computed the same way, with no full matrix anywhere."""
    s, lda, cols = _shape(n)
    arf = np.empty(n * (n + 1) // 2)
    f = rows(arf, n)
    entries = _Entries(scale, shift)
    for c in range(cols):  # row c of the leading triangle: entry c of columns c … s − 1
        f[c, s + c + 1 :] = entries(packed[offsets[c:s] + c], c, c)
    for j in range(s, n):  # column j of the upper triangle: contiguous
        f[j - s, : j + 1] = entries(packed[offsets[j] : offsets[j] + j + 1], j, 0)
    return arf


class _Entries:
    """Entries ``(i, j0 …)`` of the source shifted and scaled as the full path does it."""

    def __init__(self, scale: np.ndarray, shift: tuple[float, np.ndarray] | None) -> None:
        self.scale = scale
        self.w, self.m = shift if shift is not None else (0.0, None)

    def __call__(self, values: np.ndarray, i: int, j0: int) -> np.ndarray:
        others = slice(j0, j0 + len(values))
        if self.m is not None:
            values = values + self.w * (self.m[others] * self.m[i])
        return values / (self.scale[others] * self.scale[i])


def diagonal(arf: np.ndarray, n: int) -> np.ndarray:
    """The diagonal of the matrix (a copy)."""
    s, _, cols = _shape(n)
    f = rows(arf, n)
    out = np.empty(n)
    c = np.arange(cols)
    out[s + c] = f[c, s + c]
    lead = np.arange(s)
    out[lead] = f[lead, s + lead + 1]
    return out


def _pieces(arf: np.ndarray, n: int):
    """``(c, top, bottom)`` per array column c: ``A[0 : s+c+1, s+c]`` and ``A[c, c : s]``."""
    s, _, cols = _shape(n)
    f = rows(arf, n)
    for c in range(cols):
        yield c, f[c, : s + c + 1], f[c, s + c + 1 :]


def one_norm(arf: np.ndarray, n: int) -> float:
    """Largest column sum of ``|A|`` (LAPACK's ``dlansf`` with ``'1'``), O(n²), no temporaries
    beyond one column."""
    s = n // 2
    sums = np.zeros(n)
    for c, top, bottom in _pieces(arf, n):
        j = s + c
        magnitude = np.abs(top)
        sums[j] += magnitude.sum()
        sums[:j] += magnitude[:-1]
        if len(bottom):
            magnitude = np.abs(bottom)
            sums[c] += magnitude.sum()
            sums[c + 1 : s] += magnitude[1:]
    return float(sums.max()) if n else 0.0


def matvec(arf: np.ndarray, n: int, x: np.ndarray) -> np.ndarray:
    """``A x`` for a vector ``x`` (LAPACK has no RFP ``dsymv``), O(n²)."""
    s = n // 2
    y = np.zeros(n)
    for c, top, bottom in _pieces(arf, n):
        j = s + c
        y[j] += top @ x[: j + 1]
        y[:j] += top[:-1] * x[j]
        if len(bottom):
            y[c] += bottom @ x[c:s]
            y[c + 1 : s] += bottom[1:] * x[c]
    return y


def cholesky(arf: np.ndarray, n: int) -> tuple[np.ndarray, int]:
    """``A = Uᵀ U`` in place (``dpftrf``); ``info`` as LAPACK's (0, or the failing minor)."""
    factor, info = linalg.lapack.dpftrf(n, arf, transr="N", uplo="U", overwrite_a=1)
    return factor, int(info)


def solve(factor: np.ndarray, n: int, b: np.ndarray) -> np.ndarray:
    """``A⁻¹ b`` from the factor of :func:`cholesky` (``dpftrs``); ``b`` is left as it was."""
    x, info = linalg.lapack.dpftrs(n, factor, np.array(b, dtype=float), transr="N", uplo="U")
    if info != 0:
        raise linalg.LinAlgError(f"dpftrs failed (info {info})")
    return x


def inverse(factor: np.ndarray, n: int) -> np.ndarray:
    """``A⁻¹`` in RFP from the factor of :func:`cholesky`, in the factor's memory (``dpftri``)."""
    inv, info = linalg.lapack.dpftri(n, factor, transr="N", uplo="U", overwrite_a=1)
    if info != 0:
        raise linalg.LinAlgError(f"dpftri failed (info {info})")
    return inv


def inverse_norm_estimate(factor: np.ndarray, n: int, max_steps: int = 5) -> float:
    """A lower estimate of ``‖A⁻¹‖₁`` from the factor, O(n²) a step: Hager's method with Higham's
    refinements, step for step LAPACK's ``dlacn2`` as ``dpocon`` drives it (``A⁻¹`` is
    symmetric, so every product with ``A⁻ᵀ`` is a solve too). Deterministic: no random start."""
    if n == 0:
        return 0.0
    y = solve(factor, n, np.full(n, 1.0 / n))
    if n == 1:
        return float(abs(y[0]))
    estimate = float(np.abs(y).sum())
    signs = np.where(y >= 0, 1.0, -1.0)
    z = solve(factor, n, signs)
    j, step = int(np.argmax(np.abs(z))), 2
    while True:
        unit = np.zeros(n)
        unit[j] = 1.0
        y = solve(factor, n, unit)
        previous, estimate = estimate, float(np.abs(y).sum())
        new_signs = np.where(y >= 0, 1.0, -1.0)
        if np.array_equal(new_signs, signs) or estimate <= previous:
            break  # converged (a repeated sign vector) or cycling
        signs = new_signs
        z = solve(factor, n, signs)
        last, j = j, int(np.argmax(np.abs(z)))
        if z[last] == abs(z[j]) or step >= max_steps:
            break
        step += 1
    alternating = (-1.0) ** np.arange(n) * (1.0 + np.arange(n) / (n - 1))
    alternative = 2.0 * float(np.abs(solve(factor, n, alternating)).sum()) / (3.0 * n)
    return max(estimate, alternative)


# --------------------------------------------------------------- the scaled normal equations


def factored(
    stats, fit_intercept: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int] | None:
    """``(factor, rhs, scale, anorm, info)``: the Cholesky factor (RFP) of the column-scaled
    Gram matrix of ``stats`` (:class:`~.stats.SufficientStats` or :class:`~.packed.PackedStats`:
    their ``diagonal``, ``column`` and ``scaled_rfp``) — centred with an intercept, the raw
    moments without — the scaled cross-products, the scales, the scaled Gram's 1-norm and
    LAPACK's ``info``. ``None`` when a column has no variance (the full path handles it).

    One RFP array is the only ``p``-squared allocation: half of the full path's scaled copy.
    """
    mean, w_sum = stats.mean, stats.w_sum
    p = len(mean) - 1
    b = stats.column(p)[:p]
    diag = stats.diagonal()[:p]
    shift = None
    if not fit_intercept:
        mx, my = mean[:p], mean[p]
        diag = diag + w_sum * (mx * mx)
        b = b + w_sum * mx * my
        shift = (w_sum, mx)
    scale = np.sqrt(np.clip(diag, 0.0, None))
    if not np.all(scale > 0):
        return None
    arf = stats.scaled_rfp(p, scale, shift)
    anorm = one_norm(arf, p)
    factor, info = cholesky(arf, p)
    return factor, b / scale, scale, anorm, info


def condition(factor: np.ndarray, n: int, anorm: float) -> float:
    """The 1-norm condition estimate ``dpocon`` gives, from an RFP factor and ``‖A‖₁``."""
    estimate = inverse_norm_estimate(factor, n)
    if not (estimate > 0 and anorm > 0):
        return float("inf")
    return float(1.0 / ((1.0 / estimate) / anorm))

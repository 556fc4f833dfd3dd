"""Pure numpy/scipy: dense symmetric positive-definite algebra done in place.

On a wide design every ``p × p`` array is hundreds of MB (8,192 columns: 537 MB), so these
helpers factor, invert and scale a symmetric matrix *in its own memory* (LAPACK through
``scipy.linalg.lapack`` with ``overwrite_*``, Fortran-ordered views of C-ordered arrays) and keep
their temporaries to a panel of rows.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

EXACT_CONDITION_MAX_P = 1500
PANEL_ROWS = 256  # rows per panel of the in-place matrix updates (bounded temporaries)


def divide_symmetric(matrix: np.ndarray, scale: np.ndarray) -> None:
    """``matrix /= scale scaleᵀ`` in place, a panel of rows at a time: ``sᵢ·sⱼ = sⱼ·sᵢ`` exactly,
    so a symmetric matrix stays exactly symmetric (dividing by rows then columns would not)."""
    for i0 in range(0, len(matrix), PANEL_ROWS):
        matrix[i0 : i0 + PANEL_ROWS] /= np.outer(scale[i0 : i0 + PANEL_ROWS], scale)


def one_norm(matrix: np.ndarray) -> float:
    """Largest column sum of |matrix|, a panel of rows at a time (no ``p × p`` temporary)."""
    sums = np.zeros(matrix.shape[1])
    for i0 in range(0, len(matrix), PANEL_ROWS):
        sums += np.abs(matrix[i0 : i0 + PANEL_ROWS]).sum(axis=0)
    return float(sums.max()) if len(sums) else 0.0


# Above this order the factorisation is blocked (see :func:`blocked_cholesky_in_place`):
# multi-threaded OpenBLAS 0.3.30 (scipy's and numpy's wheels) crashes the process in its threaded
# ``dsyrk`` — which ``dpotrf`` calls — from about 16,000 columns (measured here: 16,385 crashes,
# 12,000 does not; single-threaded, both work).
BLOCKED_CHOLESKY_MIN = 8192
CHOLESKY_BLOCK = 2048


def cholesky_in_place(matrix: np.ndarray) -> tuple[np.ndarray, int]:
    """LAPACK ``dpotrf`` of a symmetric C-ordered matrix *in its own memory* (``matrix`` is
    destroyed). Its transpose is the Fortran-ordered view LAPACK factors without a copy; the
    result is that view, holding the lower factor ``L`` (``A = L Lᵀ``) in Fortran order."""
    if len(matrix) > BLOCKED_CHOLESKY_MIN:
        return blocked_cholesky_in_place(matrix)
    chol, info = linalg.lapack.dpotrf(matrix.T, lower=1, clean=1, overwrite_a=1)
    return chol, info


def blocked_cholesky_in_place(
    matrix: np.ndarray, block: int = CHOLESKY_BLOCK
) -> tuple[np.ndarray, int]:
    """:func:`cholesky_in_place` as a right-looking blocked factorisation whose large updates are
    GEMMs: ``dpotrf`` of each ``block × block`` diagonal block, a triangular solve for the panel
    below it, and the trailing lower triangle updated a column panel at a time (about the flops
    of one ``dpotrf``; temporaries of one panel). ``info`` as LAPACK's: 0, or the order of the
    first leading minor that is not positive definite (1-based)."""
    n = len(matrix)
    lower = matrix.T  # Fortran-ordered view: lower[i, j], i >= j, is the factor
    for k0 in range(0, n, block):
        k1 = min(n, k0 + block)
        factor, info = linalg.lapack.dpotrf(lower[k0:k1, k0:k1], lower=1, clean=1)
        if info:
            return lower, k0 + info
        lower[k0:k1, k0:k1] = factor  # its upper triangle zeroed (clean=1), as the rest:
        matrix[k1:, k0:k1] = 0.0  # lower[k0:k1, k1:], the upper part right of the block
        if k1 == n:
            break
        # panel ← panel · L11⁻ᵀ, then trailing -= panel · panelᵀ (lower part, by column panels)
        panel = linalg.solve_triangular(
            factor, lower[k1:, k0:k1].T, lower=True, check_finite=False
        ).T
        lower[k1:, k0:k1] = panel
        for j0 in range(k1, n, block):
            j1 = min(n, j0 + block)
            lower[j0:, j0:j1] -= panel[j0 - k1 :] @ panel[j0 - k1 : j1 - k1].T
    return lower, 0


def condition_from_factor(matrix: np.ndarray, chol: np.ndarray | None, anorm: float) -> float:
    """:func:`condition_number` of ``matrix`` reusing its Cholesky factor when it is large.

    Small matrices: exact, from the eigenvalues of ``matrix`` (which must still be intact).
    Large ones: LAPACK's 1-norm estimate (``dpocon``) from the factor and ``anorm``, O(p²).
    """
    if len(matrix) <= EXACT_CONDITION_MAX_P or chol is None:
        return condition_number(matrix)
    rcond, info = linalg.lapack.dpocon(chol, anorm, uplo="L")
    return float(1.0 / rcond) if info == 0 and rcond > 0 else float("inf")


def condition_number(matrix: np.ndarray) -> float:
    """2-norm condition number of a symmetric PSD matrix (eigenvalues) when small; for large
    ones LAPACK's O(p²) 1-norm estimate after a Cholesky factorisation (``dpocon``)."""
    if len(matrix) == 0:
        return 1.0
    if len(matrix) <= EXACT_CONDITION_MAX_P:
        eig = np.linalg.eigvalsh(matrix)
        return float(eig[-1] / eig[0]) if eig[0] > 0 else float("inf")
    anorm = one_norm(matrix)
    chol, info = cholesky_in_place(np.array(matrix))
    return condition_from_factor(matrix, chol, anorm) if info == 0 else float("inf")


def symmetric_inverse(chol: np.ndarray) -> np.ndarray:
    """``A⁻¹`` from the lower Cholesky factor of ``A`` (Fortran order), in the factor's memory:
    LAPACK ``dpotri`` (⅔ p³ flops, against 2 p³ for solving with the identity) fills the lower
    triangle, which is then mirrored a column at a time."""
    inv, info = linalg.lapack.dpotri(chol, lower=1, overwrite_c=1)
    if info != 0:
        raise linalg.LinAlgError(f"dpotri failed (info {info})")
    for j in range(len(inv) - 1):
        inv[j, j + 1 :] = inv[j + 1 :, j]
    return inv

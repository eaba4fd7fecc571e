"""Choosing a batch of structures to label from a pool of candidates (arrays only).

Three criteria, each deterministic (ties go to the lowest index):

- :func:`max_disagreement` — the ``k`` largest scores (e.g. the committee's maximum
  atomic force deviation, eV/Å).
- :func:`farthest_point` — greedy farthest-point (max–min distance) sampling in
  descriptor space (Gonzalez 1985): each pick maximises its Euclidean distance to the
  nearest point already chosen (or to a reference set such as the training data).
- :func:`d_optimal` — greedy D-optimal design (Fisher information). For a model linear in
  features φ (the last layer of a network, or its parameter gradient), with Gaussian noise
  the information of a set S is ``A_S = A_0 + Σ_{i∈S} φ_i φ_iᵀ``, and the D-criterion is
  ``log det A_S``. By the matrix determinant lemma adding φ multiplies the determinant by
  ``1 + φᵀ A⁻¹ φ``, so the greedy gain of a candidate is ``log(1 + φᵀ A⁻¹ φ)`` and ``A⁻¹``
  is updated by Sherman–Morrison, ``A⁻¹ ← A⁻¹ − (A⁻¹φ)(A⁻¹φ)ᵀ / (1 + φᵀA⁻¹φ)``; one pick
  costs O(n d). ``log det A_S − log det A_0`` is monotone submodular, so greedy is within
  a factor (1 − 1/e) of the best subset (Nemhauser, Wolsey, Fisher 1978).
- :func:`d_optimal_blocks` — D-optimal when one candidate brings several feature rows
  (a structure's atoms, a proxy for its 3N force labels): candidate j adds ``Φ_jᵀ Φ_j``,
  its gain is ``log det(I + Φ_j A⁻¹ Φ_jᵀ)`` (Sylvester's determinant identity); with one
  row per candidate this is :func:`d_optimal`.
- :func:`disagreement_then_d_optimal` — the two combined: the ``m = prefilter · k``
  candidates with the largest scores, then greedy D-optimal among those ``m``. The
  pre-filter keeps what the committee is unsure about; D-optimal keeps the batch diverse
  (the ``k`` largest scores of an MD pool are often ``k`` consecutive, nearly identical
  frames of one trajectory).

Deterministic oracles give the same label to the same structure, so an exact duplicate
(in feature space) of a picked candidate carries no information: farthest-point never
prefers one (its distance is zero) and :func:`d_optimal` removes them from the pool.
"""

from __future__ import annotations

import numpy as np

from nnpot.errors import InputError

__all__ = ["d_optimal", "d_optimal_blocks", "disagreement_then_d_optimal", "farthest_point",
           "max_disagreement", "shortlist_size"]


def _check_k(k: int) -> int:
    if int(k) != k or k < 0:
        raise InputError(f"batch size k must be a non-negative integer, got {k!r}")
    return int(k)


def _features(x, name: str = "features") -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if x.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (n, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InputError(f"{name} contain NaN or infinite values")
    return x


def max_disagreement(scores, k: int) -> np.ndarray:
    """Indices of the ``k`` largest ``scores`` (any unit), largest first.

    Ties go to the lower index; ``k`` larger than the pool returns all indices.
    """
    k = _check_k(k)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise InputError(f"scores must be a 1-D array, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise InputError("scores contain NaN or infinite values")
    order = np.lexsort((np.arange(len(s)), -s))
    return order[:k].astype(np.intp)


def farthest_point(features, k: int, start: int | None = None, reference=None) -> np.ndarray:
    """Greedy farthest-point sampling of ``k`` rows of ``features`` (n, d).

    Each pick is ``argmax_i min_{j ∈ chosen ∪ reference} ‖x_i − x_j‖`` (Euclidean, in the
    units of the features). The first pick is ``start`` if given; otherwise the point
    farthest from ``reference`` (an (m, d) array, e.g. the training set) or, without a
    reference, the point farthest from the mean of ``features``. Ties go to the lower
    index. Stops early when every remaining point coincides with a chosen one.
    """
    k = _check_k(k)
    x = _features(features)
    n = len(x)
    if n == 0 or k == 0:
        return np.zeros(0, dtype=np.intp)
    if start is not None and not 0 <= int(start) < n:
        raise InputError(f"start index {start} is outside the {n} candidates")
    dmin = np.full(n, np.inf)
    if reference is not None:
        ref = _features(reference, "reference features")
        if ref.shape[1] != x.shape[1]:
            raise InputError(
                f"reference features have {ref.shape[1]} columns, candidates {x.shape[1]}"
            )
        for r in ref:  # O(n m d) time, O(n d) memory
            dmin = np.minimum(dmin, np.linalg.norm(x - r, axis=1))
    chosen: list[int] = []
    for step in range(min(k, n)):
        if step == 0 and start is not None:
            i = int(start)
        elif step == 0 and reference is None:
            i = int(np.argmax(np.linalg.norm(x - x.mean(axis=0), axis=1)))
        else:
            masked = dmin.copy()
            masked[chosen] = -np.inf
            i = int(np.argmax(masked))
            if masked[i] <= 0.0:
                break
        chosen.append(i)
        dmin = np.minimum(dmin, np.linalg.norm(x - x[i], axis=1))
    return np.asarray(chosen, dtype=np.intp)


def _costs(cost, n: int) -> np.ndarray | None:
    """Validated per-candidate label costs (n,) > 0, or None for uniform cost."""
    if cost is None:
        return None
    c = np.asarray(cost, dtype=float)
    if c.shape != (n,):
        raise InputError(f"need one label cost per candidate ({n}), got shape {c.shape}")
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise InputError("label costs must be finite and > 0")
    return c


def information_prior(d: int, prior=1.0, ridge: float = 1e-8) -> np.ndarray:
    """The starting information matrix A_0 (d, d) for :func:`d_optimal`.

    ``prior`` a number λ > 0 gives ``λ I``; an (m, d) array X of features already in the
    training set gives ``Xᵀ X + ridge · I`` (ridge keeps A_0 invertible).
    """
    if np.isscalar(prior):
        lam = float(prior)
        if not lam > 0:
            raise InputError(f"the prior λ of the information matrix must be > 0, got {lam}")
        return lam * np.eye(d)
    x = _features(prior, "prior features")
    if x.shape[1] != d:
        raise InputError(f"prior features have {x.shape[1]} columns, candidates have {d}")
    if not ridge > 0:
        raise InputError(f"ridge must be > 0, got {ridge}")
    return x.T @ x + ridge * np.eye(d)


def d_optimal(
    features, k: int, prior=1.0, ridge: float = 1e-8, return_gains: bool = False,
    duplicate_tol: float = 1e-12, cost=None,
):
    """Greedy D-optimal batch: indices of ``k`` rows of ``features`` (n, d).

    Maximises ``log det(A_0 + Σ_selected φ φᵀ)`` one pick at a time with gain
    ``log(1 + φᵀ A⁻¹ φ)`` and Sherman–Morrison updates of ``A⁻¹``; ``A_0`` from
    :func:`information_prior` (``prior`` = λ or training features, ``ridge``). Candidates
    whose feature vector equals a picked one (within ``duplicate_tol`` relative to its
    norm) are removed. Ties go to the lower index. Returns fewer than ``k`` indices when
    the pool runs out. With ``return_gains`` also returns each pick's gain (nats).

    ``cost`` (n,) > 0: what labelling each candidate costs (any unit, e.g. atoms or oracle
    seconds); then each pick maximises gain / cost, the cost-benefit greedy rule of
    budgeted submodular maximisation (log det is monotone submodular; Khuller, Moss & Naor,
    Inf. Process. Lett. 70, 39 (1999); Krause & Guestrin, CMU-CALD-05-103 (2005), who pair
    it with a partial enumeration for a constant-factor guarantee, omitted here).
    ``None``: uniform cost (the plain greedy).
    """
    k = _check_k(k)
    phi = _features(features)
    n, d = phi.shape
    costs = _costs(cost, n)
    a_inv = np.linalg.inv(information_prior(d, prior, ridge))
    a_inv = 0.5 * (a_inv + a_inv.T)
    quad = np.einsum("ij,jk,ik->i", phi, a_inv, phi)  # φ_iᵀ A⁻¹ φ_i
    alive = np.ones(n, dtype=bool)
    chosen: list[int] = []
    gains: list[float] = []
    norms2 = np.einsum("ij,ij->i", phi, phi)
    for _ in range(min(k, n)):
        if not alive.any():
            break
        g = np.where(alive, np.log1p(np.maximum(quad, 0.0)), -np.inf)
        i = int(np.argmax(g if costs is None else g / costs))
        chosen.append(i)
        gains.append(float(g[i]))
        u = a_inv @ phi[i]
        c = 1.0 + float(phi[i] @ u)
        a_inv -= np.outer(u, u) / c
        quad -= (phi @ u) ** 2 / c
        diff2 = np.einsum("ij,ij->i", phi - phi[i], phi - phi[i])
        alive &= diff2 > (duplicate_tol**2) * max(norms2[i], np.finfo(float).tiny)
        alive[i] = False
    idx = np.asarray(chosen, dtype=np.intp)
    return (idx, np.asarray(gains)) if return_gains else idx


def disagreement_then_d_optimal(scores, features, k: int, prefilter: float = 4.0, prior=1.0,
                                ridge: float = 1e-8) -> np.ndarray:
    """Indices of ``k`` rows: greedy D-optimal among the ``m`` largest ``scores``.

    ``m = min(n, ceil(prefilter · k))`` candidates with the largest ``scores`` (any unit,
    e.g. σ_max in eV/Å; :func:`max_disagreement`) form the shortlist; :func:`d_optimal`
    (``prior``, ``ridge`` as there) then picks ``k`` of them, ties going to the larger
    score. ``prefilter = 1`` is plain disagreement (the same set unless it holds exact
    duplicates); ``prefilter ≥ n / k`` is plain D-optimal (up to ties).
    ``features`` (n, d) are the whole pool's.
    """
    k = _check_k(k)
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1:
        raise InputError(f"scores must be a 1-D array, got shape {s.shape}")
    phi = _features(features)
    if len(phi) != len(s):
        raise InputError(f"need one feature row per score ({len(s)}), got {len(phi)}")
    top = max_disagreement(s, shortlist_size(len(s), k, prefilter))
    return top[d_optimal(phi[top], k, prior=prior, ridge=ridge)]


def shortlist_size(n: int, k: int, prefilter: float) -> int:
    """``min(n, ceil(prefilter · k))``: how many candidates the disagreement pre-filter of
    :func:`disagreement_then_d_optimal` keeps (``prefilter`` ≥ 1)."""
    if not np.isfinite(prefilter) or prefilter < 1:
        raise InputError(f"the pre-filter factor must be a number >= 1, got {prefilter!r}")
    return min(int(n), int(np.ceil(prefilter * _check_k(k))))


def d_optimal_blocks(blocks, k: int, prior=1.0, ridge: float = 1e-8,
                     return_gains: bool = False, duplicate_tol: float = 1e-12, cost=None):
    """Greedy D-optimal batch of ``k`` candidates, candidate j a block ``Φ_j`` (n_j, d).

    Maximises ``log det(A_0 + Σ_selected Φ_jᵀ Φ_j)`` one pick at a time; the gain of j is
    ``log det(A + Φ_jᵀΦ_j) − log det A = log det(I_{n_j} + Φ_j A⁻¹ Φ_jᵀ)``, evaluated with
    a Cholesky factor of the current A (recomputed after each pick, O(d³) plus O(Σ n_j d²)
    per pick). ``A_0`` from :func:`information_prior`. A candidate whose block equals a
    picked one (same shape, Frobenius difference within ``duplicate_tol`` of its norm) is
    removed. Ties go to the lower index. With ``return_gains`` also returns the gains
    (nats). Unitless (features). ``cost``: per-candidate label costs, each pick then
    maximises gain / cost (as in :func:`d_optimal`).
    """
    k = _check_k(k)
    phis = [_features(b, "feature blocks") for b in blocks]
    costs = _costs(cost, len(phis))
    if not phis:
        idx = np.zeros(0, dtype=np.intp)
        return (idx, np.zeros(0)) if return_gains else idx
    d = phis[0].shape[1]
    if any(p.shape[1] != d for p in phis):
        raise InputError("every feature block must have the same number of columns")
    a = information_prior(d, prior, ridge)
    alive = np.array([len(p) > 0 for p in phis])
    norms2 = np.array([float(np.sum(p * p)) for p in phis])
    chosen: list[int] = []
    gains: list[float] = []
    for _ in range(min(k, len(phis))):
        if not alive.any():
            break
        chol = np.linalg.cholesky(0.5 * (a + a.T))
        g = np.full(len(phis), -np.inf)
        for j in np.flatnonzero(alive):
            b = np.linalg.solve(chol, phis[j].T)  # L⁻¹ Φ_jᵀ, so Φ_j A⁻¹ Φ_jᵀ = bᵀ b
            g[j] = np.linalg.slogdet(np.eye(len(phis[j])) + b.T @ b)[1]
        i = int(np.argmax(g if costs is None else g / costs))
        chosen.append(i)
        gains.append(float(g[i]))
        a = a + phis[i].T @ phis[i]
        for j in np.flatnonzero(alive):
            if phis[j].shape == phis[i].shape:
                diff2 = float(np.sum((phis[j] - phis[i]) ** 2))
                if diff2 <= (duplicate_tol**2) * max(norms2[i], np.finfo(float).tiny):
                    alive[j] = False
        alive[i] = False
    idx = np.asarray(chosen, dtype=np.intp)
    return (idx, np.asarray(gains)) if return_gains else idx

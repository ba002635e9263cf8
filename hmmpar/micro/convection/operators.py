r"""The implicit operators of one Fourier mode, their inverses, and compiled kernels that apply them.

For the horizontal wavenumber :math:`k` the Laplacian acts on the Chebyshev values in z as
:math:`\Delta_k = D_z^2 - k^2 I`. An implicit stage of the IMEX scheme with diagonal
coefficient :math:`a = a_{ii}\,\Delta t` solves, per mode,

* vorticity and stream function together (finite Pr), unknowns :math:`(\hat\omega, \hat\psi)`
  (2 nz values), rows

  .. math::

      (I - a\,\mathrm{Pr}\,\Delta_k)\,\hat\omega = r \quad\text{(interior z)},\qquad
      \Delta_k\hat\psi - \hat\omega = 0 \quad\text{(interior z)},

  and four wall rows: :math:`\hat\psi = 0` at both walls, and :math:`\hat\omega = 0`
  (free-slip: :math:`\partial_z^2\psi = 0`) or :math:`D_z\hat\psi = 0` (no-slip) at both
  walls. For no-slip the wall vorticity is an unknown fixed by the no-slip rows (the
  collocation analogue of the influence-matrix method; Canuto, Hussaini, Quarteroni & Zang,
  *Spectral Methods in Fluid Dynamics*, Springer 1988, §7.3). For free slip the block is
  lower triangular and is solved as the vorticity problem followed by the Poisson problem
  below (:class:`VorticityStream`). For :math:`\mathrm{Pr} = \infty`
  the first row is :math:`\Delta_k\hat\omega = r` (Stokes; no time step in it);
* temperature: :math:`(I - a\Delta_k)\hat T = r` at interior z, the top row
  :math:`\hat T = 0`, the bottom row :math:`\hat T = \hat T_b` or
  :math:`-D_z\hat T = \hat q_b`;
* the mean flow :math:`U(z)` (mode 0 of u, finite Pr): :math:`(I - a\,\mathrm{Pr}D_z^2)U = r`
  with :math:`U = 0` (no-slip) or :math:`D_z U = 0` (free-slip) at the walls;
* a Poisson problem :math:`\Delta_k\hat\psi = \hat\omega`, :math:`\hat\psi = 0` at the walls
  (the stream function of a stored vorticity).

The matrices are real, so the real and imaginary parts of a mode share one inverse.
Only the columns of the inverse that meet a non-zero right-hand side are kept, and they are
stored as ``(rows, cols, 2 * nk)`` with each mode's value repeated for the real and the
imaginary part: :func:`apply_modes` then runs over the interleaved complex data with the
mode index innermost (blocked so that each output sum stays in a register over the whole
sum, and a column's result does not depend on the other columns of the batch: every loop
has a fixed order).

Inverses are formed by a compiled LU factorisation with partial pivoting
(:func:`inverse_columns`), not by LAPACK: OpenBLAS may split a factorisation between
threads differently on different machines or thread counts, and the columns of a run must
be bitwise reproducible wherever they run.
"""
from __future__ import annotations

from collections import OrderedDict

import numba
import numpy as np


@numba.njit(cache=True, error_model="numpy")
def _inverse_columns_one(a, cols):
    """Columns ``cols`` of the inverse of a (n, n): LU with partial pivoting, then the
    triangular solves for all columns at once (row operations, vectorised over the columns;
    every element is still accumulated in increasing index order)."""
    n = a.shape[0]
    lu = a.copy()
    perm = np.arange(n)
    for j in range(n):
        p = j
        big = abs(lu[j, j])
        for i in range(j + 1, n):
            if abs(lu[i, j]) > big:
                big = abs(lu[i, j])
                p = i
        if p != j:
            for q in range(n):
                tmp = lu[j, q]
                lu[j, q] = lu[p, q]
                lu[p, q] = tmp
            t = perm[j]
            perm[j] = perm[p]
            perm[p] = t
        piv = lu[j, j]
        for i in range(j + 1, n):
            f = lu[i, j] / piv
            lu[i, j] = f
            if f != 0.0:
                _axpy(lu[i, j + 1:], lu[j, j + 1:], -f)
    m = cols.shape[0]
    # solve A X = E[:, cols]: P A = L U, so L U X = P E
    y = np.zeros((n, m))
    for i in range(n):
        for c in range(m):
            if perm[i] == cols[c]:
                y[i, c] = 1.0
    for i in range(n):
        yi = y[i]
        for q in range(i):
            _axpy(yi, y[q], -lu[i, q])
    for i in range(n - 1, -1, -1):
        yi = y[i]
        for q in range(i + 1, n):
            _axpy(yi, y[q], -lu[i, q])
        d = lu[i, i]
        for c in range(m):
            yi[c] = yi[c] / d
    return y


@numba.njit(cache=True, error_model="numpy")
def inverse_columns(mats, cols):
    """Columns ``cols`` of the inverses of ``mats`` (nk, n, n), as (n, len(cols), 2 nk)
    with each mode repeated for the real and imaginary parts."""
    nk, n = mats.shape[0], mats.shape[1]
    m = cols.shape[0]
    out = np.empty((n, m, 2 * nk))
    for k in range(nk):
        inv = _inverse_columns_one(mats[k], cols)
        for i in range(n):
            for c in range(m):
                out[i, c, 2 * k] = inv[i, c]
                out[i, c, 2 * k + 1] = inv[i, c]
    return out


@numba.njit(cache=True, error_model="numpy")
def _axpy(o, x, c):
    """``o += c x`` (contiguous 1-d rows)."""
    for q in range(x.shape[0]):
        o[q] += c * x[q]


@numba.njit(cache=True, error_model="numpy")
def apply_modes(g, r, out):
    r"""``out[b, i, q] = sum_j g[i, j, q] r[b, j, q]`` (per-mode matrices, interleaved complex).

    Each output element is summed over j in increasing order from zero, whatever the batch
    (:func:`_modes_one`: no reassociation)."""
    for b in range(r.shape[0]):
        _modes_one(g, r[b], out[b])


@numba.njit(cache=True, error_model="numpy")
def apply_matrix(d, r, out):
    """``out[b, i, q] = sum_j d[i, j] r[b, j, q]`` (one matrix for every mode).

    Each output element is summed over j in increasing order from zero (:func:`_matrix_one`)."""
    for b in range(r.shape[0]):
        _matrix_one(d, r[b], out[b])


@numba.njit(cache=True, error_model="numpy")
def matvec_rows(d, x, out):
    """``out[b, i] = sum_j d[i, j] x[b, j]`` for real profiles x (nb, m) (any strides), summed
    over j in increasing order from zero (as :func:`apply_matrix`)."""
    nb = x.shape[0]
    n, m = d.shape
    for b in range(nb):
        for i in range(n):
            acc = 0.0
            for j in range(m):
                acc += d[i, j] * x[b, j]
            out[b, i] = acc


@numba.njit(cache=True, error_model="numpy")
def _fold(r, s, d):
    """Mirror sums ``s[c] = r[c] + r[m-1-c]`` and differences ``d[c] = r[c] - r[m-1-c]`` of
    the rows of r (m, q), c < m/2; for odd m the middle row is copied to ``s[m // 2]``."""
    m = r.shape[0]
    mo = m // 2
    for c in range(mo):
        a = r[c]
        z = r[m - 1 - c]
        sc = s[c]
        dc = d[c]
        for q in range(a.shape[0]):
            sc[q] = a[q] + z[q]
            dc[q] = a[q] - z[q]
    if m % 2:
        s[mo, :] = r[mo]


@numba.njit(cache=True, error_model="numpy")
def _unfold(p, h, out, nf):
    """Rebuild nf fields of n rows in ``out`` (nf n, q) from their even parts p (nf ceil(n/2), q)
    and odd parts h (nf floor(n/2), q): row i is p_i + h_i, its mirror n-1-i is p_i - h_i."""
    n = out.shape[0] // nf
    he, ho = (n + 1) // 2, n // 2
    for f in range(nf):
        for i in range(ho):
            a = p[f * he + i]
            z = h[f * ho + i]
            lo = out[f * n + i]
            hi = out[f * n + n - 1 - i]
            for q in range(a.shape[0]):
                lo[q] = a[q] + z[q]
                hi[q] = a[q] - z[q]
        if n % 2:
            out[f * n + ho, :] = p[f * he + ho]


@numba.njit(cache=True, error_model="numpy")
def apply_folded_modes(ge, go, r, out, nf):
    r"""``out[b] = G r[b]`` for per-mode matrices G that commute with the mirror z -> 1 - z,
    given as their even part ``ge`` (acting on mirror sums) and odd part ``go`` (on differences).

    With :math:`s_c = r_c + r_{m-1-c}` and :math:`d_c = r_c - r_{m-1-c}`, the even part of
    the result is :math:`G_e s` and the odd part :math:`G_o d` (:func:`fold_columns`); each
    costs a quarter of the full product. Fixed loop order per column (no batch dependence)."""
    nb, m, nq = r.shape
    s = np.empty(((m + 1) // 2, nq))
    d = np.empty((m // 2, nq))
    p = np.empty((ge.shape[0], nq))
    h = np.empty((go.shape[0], nq))
    for b in range(nb):
        _fold(r[b], s, d)
        _modes_one(ge, s, p)
        _modes_one(go, d, h)
        _unfold(p, h, out[b], nf)


@numba.njit(cache=True, error_model="numpy")
def apply_folded_matrix(de, do, r, out):
    r"""``out[b] = D r[b]`` for one matrix D that anticommutes with the mirror (e.g. d/dz),
    given by :func:`fold_columns` with ``flips=True``: the even part of the result is
    :math:`D_o d` (mirror differences), the odd part :math:`D_e s` (mirror sums)."""
    nb, m, nq = r.shape
    s = np.empty(((m + 1) // 2, nq))
    d = np.empty((m // 2, nq))
    p = np.empty((do.shape[0], nq))
    h = np.empty((de.shape[0], nq))
    for b in range(nb):
        _fold(r[b], s, d)
        _matrix_one(do, d, p)
        _matrix_one(de, s, h)
        _unfold(p, h, out[b], 1)


@numba.njit(cache=True, error_model="numpy")
def _modes_one(g, r, out):
    """``out[i, q] = sum_j g[i, j, q] r[j, q]``: two output rows and four q at a time, the
    eight sums held in registers over the whole j loop (each summed over j in increasing
    order from zero, so the result is that of the plain loop)."""
    ni, nj, nq = g.shape
    for i in range(0, ni - 1, 2):
        g0 = g[i]
        g1 = g[i + 1]
        o0 = out[i]
        o1 = out[i + 1]
        q = 0
        while q + 4 <= nq:
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
            for j in range(nj):
                x = r[j]
                h0 = g0[j]
                h1 = g1[j]
                x0 = x[q]
                x1 = x[q + 1]
                x2 = x[q + 2]
                x3 = x[q + 3]
                a0 += h0[q] * x0
                a1 += h0[q + 1] * x1
                a2 += h0[q + 2] * x2
                a3 += h0[q + 3] * x3
                b0 += h1[q] * x0
                b1 += h1[q + 1] * x1
                b2 += h1[q + 2] * x2
                b3 += h1[q + 3] * x3
            o0[q] = a0
            o0[q + 1] = a1
            o0[q + 2] = a2
            o0[q + 3] = a3
            o1[q] = b0
            o1[q + 1] = b1
            o1[q + 2] = b2
            o1[q + 3] = b3
            q += 4
        for qq in range(q, nq):
            a = 0.0
            b = 0.0
            for j in range(nj):
                a += g0[j, qq] * r[j, qq]
                b += g1[j, qq] * r[j, qq]
            o0[qq] = a
            o1[qq] = b
    if ni % 2:
        i = ni - 1
        for qq in range(nq):
            a = 0.0
            for j in range(nj):
                a += g[i, j, qq] * r[j, qq]
            out[i, qq] = a


@numba.njit(cache=True, error_model="numpy")
def _matrix_one(d, r, out):
    """``out[i, q] = sum_j d[i, j] r[j, q]``, blocked as :func:`_modes_one` (same sums)."""
    n, m = d.shape
    nq = r.shape[1]
    for i in range(0, n - 1, 2):
        o0 = out[i]
        o1 = out[i + 1]
        q = 0
        while q + 4 <= nq:
            a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
            for j in range(m):
                x = r[j]
                c0 = d[i, j]
                c1 = d[i + 1, j]
                x0 = x[q]
                x1 = x[q + 1]
                x2 = x[q + 2]
                x3 = x[q + 3]
                a0 += c0 * x0
                a1 += c0 * x1
                a2 += c0 * x2
                a3 += c0 * x3
                b0 += c1 * x0
                b1 += c1 * x1
                b2 += c1 * x2
                b3 += c1 * x3
            o0[q] = a0
            o0[q + 1] = a1
            o0[q + 2] = a2
            o0[q + 3] = a3
            o1[q] = b0
            o1[q + 1] = b1
            o1[q + 2] = b2
            o1[q + 3] = b3
            q += 4
        for qq in range(q, nq):
            a = 0.0
            b = 0.0
            for j in range(m):
                a += d[i, j] * r[j, qq]
                b += d[i + 1, j] * r[j, qq]
            o0[qq] = a
            o1[qq] = b
    if n % 2:
        i = n - 1
        for qq in range(nq):
            a = 0.0
            for j in range(m):
                a += d[i, j] * r[j, qq]
            out[i, qq] = a


@numba.njit(cache=True, error_model="numpy")
def advection(phys, prod, dxinv, hzinv, want_rate):
    r"""Advection terms on the padded grid and the velocity limit rate, per column b.

    ``phys[b]`` holds u, w and the x and z derivatives of the advected fields
    (u, w, f1_x, f1_z, f2_x, f2_z, ...), each (nz, nxp); ``prod[b, p] = -(u f_x + w f_z)``
    of field p. With ``want_rate``, returns :math:`\max_{z,x}(|u|\,\mathrm{dxinv} +
    |w|\,\mathrm{hzinv}_z)` per column (NaN if any term is NaN), else zeros."""
    nb, nzp, nx = phys.shape[0], phys.shape[2], phys.shape[3]
    npr = prod.shape[1]
    rate = np.zeros(nb)
    for b in range(nb):
        for p in range(npr):
            for i in range(nzp):
                u = phys[b, 0, i]
                w = phys[b, 1, i]
                fx = phys[b, 2 + 2 * p, i]
                fz = phys[b, 3 + 2 * p, i]
                o = prod[b, p, i]
                for q in range(nx):
                    o[q] = -(u[q] * fx[q] + w[q] * fz[q])
        if want_rate:
            big = 0.0
            bad = False
            for i in range(nzp):
                u = phys[b, 0, i]
                w = phys[b, 1, i]
                h = hzinv[i]
                for q in range(nx):
                    v = abs(u[q]) * dxinv + abs(w[q]) * h
                    if v > big:
                        big = v
                    elif v != v:
                        bad = True
            rate[b] = np.nan if bad else big
    return rate


def fold_columns(g: np.ndarray, nf: int, flips: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Even and odd parts of a linear map that commutes (``flips``: anticommutes) with the mirror.

    ``g`` (nf n, m, ...) maps m values, mirrored by :math:`c \mapsto m-1-c`, to nf fields of
    n values each, mirrored by :math:`i \mapsto n-1-i` within each field. Collocation on the
    symmetric Chebyshev points makes :math:`D_z^2` commute with the mirror J and :math:`D_z`
    anticommute, and so do the implicit operators whose wall conditions are symmetric. For
    :math:`r = r_e + r_o` (:math:`r_{e,o} = (r \pm Jr)/2`), :math:`Gr_e` is even and
    :math:`Gr_o` odd (``flips``: the other way round), so

    .. math::

        (G r)_i = \sum_{c < m/2} G^e_{ic}\, s_c + \sum_{c < m/2} G^o_{ic}\, d_c,\qquad
        G^e_{ic} = \tfrac12 (G_{ic} + G_{i,m-1-c}),\quad G^o_{ic} = \tfrac12 (G_{ic} - G_{i,m-1-c}),

    with mirror sums :math:`s_c = r_c + r_{m-1-c}` and differences :math:`d_c`; for odd m the
    middle column is :math:`G^e_{i,m/2} = G_{i,m/2}` and :math:`s_{m/2} = r_{m/2}`. Only the
    rows i < n/2 of each field are kept: the even part of the result on the first ceil(n/2),
    the odd part on the first floor(n/2) rows.

    Returns
    -------
    (even, odd)
        ``even`` acts on the sums, ``odd`` on the differences; rows field by field.
    """
    n = g.shape[0] // nf
    m = g.shape[1]
    me, mo = (m + 1) // 2, m // 2
    gr = g[:, ::-1]
    ev = 0.5 * (g[:, :me] + gr[:, :me])
    if m % 2:
        ev[:, mo] = g[:, mo]
    od = 0.5 * (g[:, :mo] - gr[:, :mo])
    rows_e = np.concatenate([f * n + np.arange((n + 1) // 2) for f in range(nf)])
    rows_o = np.concatenate([f * n + np.arange(n // 2) for f in range(nf)])
    if flips:
        rows_e, rows_o = rows_o, rows_e
    return np.ascontiguousarray(ev[rows_e]), np.ascontiguousarray(od[rows_o])


class Folded:
    """A per-mode or shared linear map stored as its mirror-even and mirror-odd parts
    (:func:`fold_columns`): about a quarter of the dense storage and half the work.

    Parameters
    ----------
    even, odd
        The parts acting on mirror sums and differences: (rows, m, 2 nk) per-mode matrices
        or, with ``flips``, (rows, m) shared ones.
    nf
        Number of output fields.
    rows
        Rows of the full result (nf times the points per field).
    flips
        The map anticommutes with the mirror (a first derivative); shared matrices only.
    """

    def __init__(self, even: np.ndarray, odd: np.ndarray, nf: int, rows: int, flips: bool = False) -> None:
        self.even, self.odd = even, odd
        self.nf = nf
        self.rows = rows
        self.flips = flips

    @classmethod
    def from_dense(cls, g: np.ndarray, nf: int = 1, flips: bool = False) -> "Folded":
        """Fold a dense map (nf n, m[, 2 nk]) (:func:`fold_columns`)."""
        even, odd = fold_columns(g, nf, flips)
        return cls(even, odd, nf, g.shape[0], flips)

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        """``out[b] = G r[b]`` for real arrays r (nb, m, q), out (nb, rows, q)."""
        if self.flips:
            apply_folded_matrix(self.even, self.odd, r, out)
        else:
            apply_folded_modes(self.even, self.odd, r, out, self.nf)


def fold_matrices(mats: np.ndarray, nf: int, sign: int) -> np.ndarray:
    r"""The square problems (nk, nf h, nf h) of the mirror-even (``sign`` +1) or odd (-1) solutions.

    ``mats`` (nk, nf n, nf n) act on nf fields of n values and commute with the mirror
    :math:`i \mapsto n-1-i` of every field (up to the sign of rows whose right-hand side is
    zero). An even (odd) solution is fixed by its first :math:`h = \lceil n/2\rceil`
    (:math:`\lfloor n/2\rfloor`) values per field, and the first h rows of each field are
    its equations: :math:`M^\pm_{ic} = M_{ic} \pm M_{i,n-1-c}`, and :math:`M_{ic}` for the
    middle point of odd n.
    """
    nk = mats.shape[0]
    n = mats.shape[1] // nf
    h = (n + 1) // 2 if sign > 0 else n // 2
    mid = n // 2 if n % 2 else -1
    # (mode, row field, row, column field, column) views instead of fancy indexing
    m5 = mats.reshape(nk, nf, n, nf, n)[:, :, :h]
    out = m5[..., :h] + sign * m5[..., ::-1][..., :h]
    if mid >= 0 and sign > 0:
        out[..., mid] = m5[..., mid]
    return out.reshape(nk, nf * h, nf * h)


def folded_inverse(mats: np.ndarray, nf: int, points: np.ndarray) -> Folded:
    r"""The columns ``points`` (mirror-symmetric, ascending, of field 0) of the inverses of
    ``mats`` (nk, nf n, nf n), folded as :func:`fold_columns` would fold the dense ones.

    Column c of the even part is :math:`\tfrac12 M^{-1}(e_c + e_{m-1-c})`, the even solution
    for the half-size right-hand side :math:`\tfrac12 e_c` (:math:`e_c` for the middle
    point); likewise the odd part. Two LU factorisations of half size: a quarter of the
    work of the full one.
    """
    n = mats.shape[1] // nf
    m = len(points)
    parts = []
    for sign, half in ((1, (m + 1) // 2), (-1, m // 2)):
        g = inverse_columns(fold_matrices(mats, nf, sign), np.ascontiguousarray(points[:half]))
        scale = np.full(half, 0.5)
        if sign > 0 and m % 2:
            scale[-1] = 1.0
        parts.append(g * scale[None, :, None])
    return Folded(parts[0], parts[1], nf, nf * n)


class VorticityStream:
    r"""The free-slip (vorticity, stream function) solve as two chained per-mode maps.

    With free-slip walls (:math:`\hat\omega = \hat\psi = 0` there) the block problem of
    :meth:`ModeOperators.stage` is block lower-triangular: the vorticity rows involve only
    :math:`\hat\omega`, so :math:`\hat\omega = A^{-1}r` with
    :math:`A = I - a\,\mathrm{Pr}\,\Delta_k` (Dirichlet rows at the walls), then
    :math:`\hat\psi = P^{-1}\hat\omega` with the Poisson inverse P (interior rows of
    :math:`\hat\omega` as its right-hand side). The same solution as the block inverse (up to
    rounding), from an LU of half the size; applying it costs the same.

    Parameters
    ----------
    vort
        :class:`Folded` (nz, nz - 2, 2 nk): interior right-hand side -> vorticity.
    poisson
        :class:`Folded` (nz, nz - 2, 2 nk): interior vorticity -> stream function.
    """

    def __init__(self, vort: Folded, poisson: Folded) -> None:
        self.vort, self.poisson = vort, poisson
        self.nz = vort.rows
        self.rows = 2 * self.nz

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        """``out[b] = (omega, psi)`` (nb, 2 nz, q) for the interior right-hand sides r (nb, nz - 2, q)."""
        nz = self.nz
        om = np.empty((r.shape[0], nz, r.shape[2]))
        self.vort.apply(r, om)
        psi = np.empty_like(om)
        self.poisson.apply(np.ascontiguousarray(om[:, 1:-1]), psi)
        out[:, :nz] = om
        out[:, nz:] = psi


class Dense:
    """Per-mode matrices (rows, m, 2 nk) applied as they are (:func:`apply_modes`)."""

    def __init__(self, g: np.ndarray) -> None:
        self.g = g
        self.rows = g.shape[0]

    def apply(self, r: np.ndarray, out: np.ndarray) -> None:
        """``out[b] = G r[b]`` for real arrays r (nb, m, 2 nk), out (nb, rows, 2 nk)."""
        apply_modes(self.g, r, out)


def as_real(a: np.ndarray) -> np.ndarray:
    """Real view (..., 2 nk) of a C-contiguous complex array (..., nk)."""
    return a.view(np.float64)


#: memory for the cached implicit inverses of one :class:`ModeOperators` (bytes)
CACHE_BYTES = 64 * 2**20


class ModeOperators:
    """Per-mode implicit inverses for one box, cached by the stage coefficient.

    Parameters
    ----------
    dz
        Chebyshev derivative matrix (nz, nz).
    k
        Wavenumbers of the kept modes (nk,), ``k[0] = 0``.
    pr
        Prandtl number (``inf``: Stokes).
    no_slip
        Wall type.
    flux_bottom
        Bottom thermal condition is a flux (else a temperature).
    cache_size
        Number of stage coefficients kept (an LRU). Default: as many as fit in
        :data:`CACHE_BYTES` (at least 4, at most 64). Several boxes stepped together each
        keep their own step (a rank-independent trajectory needs it), and an SP coupling
        step of :math:`\Delta t_M` gives each box a step :math:`\Delta t_M/n` with its own n:
        a cache of 4 was evicted at nearly every stage with 8 boxes on a rank (57 % of the
        stage calls rebuilt their inverses, half the run time; 32 x 25 boxes, no-slip).
    """

    def __init__(self, dz: np.ndarray, k: np.ndarray, pr: float, no_slip: bool, flux_bottom: bool,
                 cache_size: int | None = None) -> None:
        self.dz = dz
        self.d2 = dz @ dz
        self.k = k
        self.nz = dz.shape[0]
        self.pr = pr
        self.no_slip = no_slip
        self.flux_bottom = flux_bottom
        nz, nk = dz.shape[0], len(k)
        entry = 8 * 2 * nk * (nz * nz + 2 * nz * (nz - 2)) + 8 * nz * nz   # temp + vort + mean, bytes
        self.cache_size = int(cache_size) if cache_size else int(min(64, max(4, CACHE_BYTES // entry)))
        self._cache: OrderedDict[float, tuple] = OrderedDict()
        nz = self.nz
        self.interior = np.arange(1, nz - 1)
        eye = np.eye(nz)
        self._lap = np.array([self.d2 - kk * kk * eye for kk in k])      # (nk, nz, nz)
        # Poisson (psi from omega) and, for Pr = inf, the Stokes block (dt-independent)
        self.poisson = folded_inverse(self._poisson_mats(), 1, self.interior)   # rhs: interior omega
        if np.isinf(pr):
            self.stokes = folded_inverse(self._block_mats(None), 2, self.interior)
        self.dz_folded = Folded.from_dense(dz, flips=True)

    def _poisson_mats(self) -> np.ndarray:
        mats = self._lap.copy()
        nz = self.nz
        mats[:, 0, :] = 0.0
        mats[:, 0, 0] = 1.0
        mats[:, -1, :] = 0.0
        mats[:, -1, nz - 1] = 1.0
        mats[0] = np.eye(nz)          # mode 0 has no stream function (psi_0 = 0)
        return mats

    def _block_mats(self, a: float | None) -> np.ndarray:
        """(omega, psi) block per mode; ``a`` = a_ii dt (None: Stokes)."""
        nz = self.nz
        nk = len(self.k)
        eye = np.eye(nz)
        mats = np.zeros((nk, 2 * nz, 2 * nz))
        for m in range(nk):
            lap = self._lap[m]
            top = lap.copy() if a is None else eye - a * self.pr * lap
            mats[m, :nz, :nz] = top
            mats[m, nz:, nz:] = lap
            mats[m, nz:, :nz] = -eye
            for row in (0, nz - 1):
                mats[m, row, :] = 0.0
                mats[m, nz + row, :] = 0.0
                mats[m, nz + row, nz + row] = 1.0                   # psi = 0
                if self.no_slip:
                    mats[m, row, nz:] = self.dz[row]                # psi_z = 0
                else:
                    mats[m, row, row] = 1.0                         # omega = 0
        mats[0] = np.eye(2 * nz)                                    # mode 0: the mean flow U instead
        return mats

    def _vorticity_mats(self, a: float) -> np.ndarray:
        """Free-slip vorticity problem per mode: :math:`I - a\,\mathrm{Pr}\,\Delta_k`, omega = 0 at the walls."""
        nz = self.nz
        mats = np.eye(nz)[None, :, :] - a * self.pr * self._lap
        for row in (0, nz - 1):
            mats[:, row, :] = 0.0
            mats[:, row, row] = 1.0
        mats[0] = np.eye(nz)                                        # mode 0: the mean flow U instead
        return mats

    def _temperature_mats(self, a: float) -> np.ndarray:
        nz = self.nz
        eye = np.eye(nz)
        mats = eye[None, :, :] - a * self._lap
        mats[:, -1, :] = 0.0
        mats[:, -1, -1] = 1.0
        mats[:, 0, :] = 0.0
        if self.flux_bottom:
            mats[:, 0, :] = -self.dz[0]
        else:
            mats[:, 0, 0] = 1.0
        return mats

    def _mean_flow_mat(self, a: float) -> np.ndarray:
        nz = self.nz
        mat = np.eye(nz) - a * self.pr * self.d2
        for row in (0, nz - 1):
            mat[row, :] = 0.0
            if self.no_slip:
                mat[row, row] = 1.0
            else:
                mat[row, :] = self.dz[row]
        return mat[None]

    def stage(self, a: float) -> tuple:
        """Inverses for the stage coefficient ``a`` = a_ii dt (cached).

        Returns
        -------
        (vort, temp, mean)
            ``vort`` maps the interior vorticity right-hand side to (omega, psi), 2 nz rows
            (None for Pr = inf): for no-slip a :class:`Folded` (2 nz, nz - 2, 2 nk) of the
            block inverse, for free slip a :class:`VorticityStream`; ``temp`` (nz, nz, 2 nk;
            :class:`Folded`, or :class:`Dense` for a flux bottom) maps the full temperature
            right-hand side (bottom row: the boundary value) to T; ``mean``
            (nz, nz - 2, 2) maps the interior mean-flow right-hand side to U (None for Pr = inf).
        """
        hit = self._cache.get(a)
        if hit is not None:
            self._cache.move_to_end(a)
            return hit
        # a flux bottom breaks the mirror symmetry of the temperature problem
        if self.flux_bottom:
            temp = Dense(inverse_columns(self._temperature_mats(a), np.arange(self.nz)))
        else:
            temp = folded_inverse(self._temperature_mats(a), 1, np.arange(self.nz))
        if np.isinf(self.pr):
            vort = mean = None
        else:
            if self.no_slip:
                vort = folded_inverse(self._block_mats(a), 2, self.interior)
            else:
                vort = VorticityStream(folded_inverse(self._vorticity_mats(a), 1, self.interior), self.poisson)
            mean = inverse_columns(self._mean_flow_mat(a), self.interior)
        hit = (vort, temp, mean)
        self._cache[a] = hit
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return hit

"""GW distance posterior along a line of sight, and what it implies (numpy only).

The distance ansatz of 3D GW sky maps (Singer et al. 2016, "Going the distance",
ApJL 829 L15; Singer et al. 2016, ApJS 226 10): along the line of sight of a cell,

``p(r | n) = N r**2 exp(-(r - mu)**2 / (2 sigma**2)) / (sqrt(2 pi) sigma)``, ``r > 0``,

with ``mu = DISTMU``, ``sigma = DISTSIGMA`` and ``N = DISTNORM`` of the cell. The
functions below are closed forms of ligo.skymap's ``ligo.skymap.distance`` ufuncs
(``conditional_pdf``, ``conditional_cdf``, ``conditional_ppf``,
``parameters_to_moments``; the test suite compares them on the real maps), plus:

* :func:`volume_density` — the 3D posterior density ``dP/dV`` (Mpc**-3) at a point
  ``(n, r)``: ``rho(n) * N * exp(-(r - mu)**2 / (2 sigma**2)) / (sqrt(2 pi) sigma)``
  with ``rho`` the sky density per steradian; what ligo.skymap's
  ``postprocess.crossmatch(..., cosmology=False)`` calls ``probdensity_vol``;
* :func:`distance_p_value` — whether a galaxy's measured distance ``d ± s`` is
  consistent with the posterior: the two-sided tail probability
  ``2 min(F(d), 1 - F(d))`` of the predictive distribution ``F`` of a measured
  distance (the posterior convolved with the galaxy's Gaussian error);
* :func:`absolute_magnitude` — ``M = m - 5 log10(d / 10 pc)`` (no extinction, no
  K-correction: GW distances are below z ≈ 0.1), and :func:`fits_range`.

Cells without distance information (``mu = inf`` or ``N = 0``) give NaN.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

__all__ = [
    "absolute_magnitude",
    "conditional_cdf",
    "conditional_pdf",
    "conditional_ppf",
    "distance_p_value",
    "fits_range",
    "moments",
    "volume_density",
]

FloatArray = npt.NDArray[np.float64]
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))
_STEP_QUANTILES = 256  # quantiles of the posterior used for the predictive distribution
_MAX_ITERATIONS = 100  # of the ppf's safeguarded Newton (about 4 are needed)
_GRID = 64  # steps of the ppf's starting grid


def _phi(z: FloatArray) -> FloatArray:
    return np.asarray(np.exp(-0.5 * z * z) / _SQRT_2PI, dtype=np.float64)


def _arrays(*values: npt.ArrayLike) -> tuple[FloatArray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in np.broadcast_arrays(*values))


#: Below ``x = mu / sigma = _X_SWITCH`` the closed forms cancel (their relative error
#: grows like ``x**4``): the asymptotic series of :func:`_tail_integrals` is used there.
_X_SWITCH = -10.0
_SERIES_TERMS = 48


def _tail_integrals(y: FloatArray) -> tuple[FloatArray, ...]:
    """``A_n(y) = ∫_0^∞ t**n exp(-y t - t**2 / 2) dt``, n = 0..4, for ``y >= 10``.

    The asymptotic series ``Σ_k (-1)**k (n+2k)! / (2**k k! y**(n+2k+1))`` (terms
    fall by ``(n+2k+1)(n+2k+2) / (2 (k+1) y**2)``: below 1e-17 of the sum well
    before the last term at ``y = 10``).
    """
    out = []
    inv = 1.0 / y
    for n in range(5):
        term = np.ones_like(y)
        for i in range(1, n + 1):
            term = term * i
        term = term * inv ** (n + 1)
        total = term.copy()
        for k in range(_SERIES_TERMS):
            term = -term * (n + 2 * k + 1) * (n + 2 * k + 2) / (2.0 * (k + 1)) * inv * inv
            total = total + term
        out.append(total)
    return tuple(out)


def moments(mu: npt.ArrayLike, sigma: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean, standard deviation and normalisation of the ansatz (Mpc, Mpc, Mpc**-2).

    ligo.skymap's ``parameters_to_moments``: with ``x = mu / sigma``,
    ``S_k = ∫ (x + z)**k φ(z) dz`` over ``z > -x`` gives ``S2 = (x²+1) Φ(x) + x φ(x)``,
    ``S3 = (x³+3x) Φ(x) + (x²+2) φ(x)``, ``S4 = (x⁴+6x²+3) Φ(x) + (x³+5x) φ(x)``;
    mean ``σ S3/S2``, second moment ``σ² S4/S2``, ``N = 1 / (σ² S2)``. Below
    ``x = -10`` (cells of real maps reach ``x = -18``), ``S_k = φ(x) A_k(-x)`` with
    the asymptotic series of ``A_k``.

    Examples
    --------
    ``mu = 0``: a chi distribution with 3 degrees of freedom.

    >>> mean, std, norm = moments(0.0, 1.0)
    >>> round(float(mean), 6), round(float(norm), 6)
    (1.595769, 2.0)
    """
    mu_a, sigma_a = _arrays(mu, sigma)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        x = mu_a / sigma_a
        cdf, pdf = ndtr(x), _phi(x)
        s2 = (x * x + 1.0) * cdf + x * pdf
        s3 = (x**3 + 3.0 * x) * cdf + (x * x + 2.0) * pdf
        s4 = (x**4 + 6.0 * x * x + 3.0) * cdf + (x**3 + 5.0 * x) * pdf
        far = np.isfinite(x) & (x < _X_SWITCH)
        if np.any(far):
            _, _, a2, a3, a4 = _tail_integrals(np.where(far, -x, 1.0 - _X_SWITCH))
            s2, s3, s4 = (np.where(far, pdf * a, s) for a, s in ((a2, s2), (a3, s3), (a4, s4)))
        mean = sigma_a * s3 / s2
        std = sigma_a * np.sqrt(np.maximum(s4 / s2 - (s3 / s2) ** 2, 0.0))
        norm = 1.0 / (sigma_a * sigma_a * s2)
    bad = ~np.isfinite(mu_a)
    return (np.where(bad, np.nan, mean), np.where(bad, np.nan, std),
            np.where(bad, np.nan, norm))


def conditional_pdf(r: npt.ArrayLike, mu: npt.ArrayLike, sigma: npt.ArrayLike,
                    norm: npt.ArrayLike) -> FloatArray:
    """Posterior density of the distance along the line of sight (Mpc**-1).

    Examples
    --------
    >>> _, _, n = moments(40.0, 8.0)
    >>> round(float(conditional_pdf(40.0, 40.0, 8.0, n)), 6)
    0.04795
    """
    r_a, mu_a, sigma_a, norm_a = _arrays(r, mu, sigma, norm)
    with np.errstate(invalid="ignore", over="ignore"):
        out = norm_a * r_a * r_a * _phi((r_a - mu_a) / sigma_a) / sigma_a
    return np.where(np.isfinite(mu_a), np.where(r_a > 0, out, 0.0), np.nan)


def conditional_cdf(r: npt.ArrayLike, mu: npt.ArrayLike, sigma: npt.ArrayLike,
                    norm: npt.ArrayLike) -> FloatArray:
    """Posterior probability that the distance is below ``r``.

    ``N [(mu² + σ²)(Φ(z1) - Φ(z0)) - σ (mu + r) φ(z1) + σ mu φ(z0)]`` with
    ``z0 = -mu/σ``, ``z1 = (r - mu)/σ`` (upper tails where both are positive, so that
    ``1 - F`` keeps its precision).

    Examples
    --------
    >>> _, _, n = moments(10.0, 5.0)
    >>> round(float(conditional_cdf(8.0, 10.0, 5.0, n)), 6)
    0.07836
    """
    r_a, mu_a, sigma_a, norm_a = _arrays(r, mu, sigma, norm)
    rr = np.maximum(r_a, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        z0 = -mu_a / sigma_a
        z1 = (rr - mu_a) / sigma_a
        upper = z0 > 0
        mass = np.where(upper, ndtr(-z0) - ndtr(-z1), ndtr(z1) - ndtr(z0))
        edge = sigma_a * (mu_a + rr) * _phi(z1)
        edge = np.where(np.isinf(rr), 0.0, edge)
        out = norm_a * ((mu_a * mu_a + sigma_a * sigma_a) * mass - edge
                        + sigma_a * mu_a * _phi(z0))
        far = np.isfinite(z0) & (z0 > -_X_SWITCH) & np.isfinite(rr)
        if np.any(far):
            y = np.where(far, z0, -_X_SWITCH)
            tail = _upper_tail(np.where(far, rr / sigma_a, 0.0), y, norm_a, sigma_a)
            out = np.where(far, 1.0 - tail, out)
    out = np.clip(out, 0.0, 1.0)
    return np.where(np.isfinite(mu_a), np.where(r_a > 0, out, 0.0), np.nan)


def _upper_tail(u1: FloatArray, y: FloatArray, norm: FloatArray,
                sigma: FloatArray) -> FloatArray:
    """``1 - F`` for ``y = -mu/sigma > 10``: ``N σ² φ(u1 + y) [A_2 + 2 u1 A_1 + u1² A_0](w)``
    with ``w = u1 + y`` (``u1 = r / σ``)."""
    a0, a1, a2, _, _ = _tail_integrals(u1 + y)
    return np.asarray(norm * sigma * sigma * _phi(u1 + y)
                      * (a2 + 2.0 * u1 * a1 + u1 * u1 * a0), dtype=np.float64)


def conditional_ppf(p: npt.ArrayLike, mu: npt.ArrayLike, sigma: npt.ArrayLike,
                    norm: npt.ArrayLike) -> FloatArray:
    """Distance at which the posterior's cumulative probability is ``p`` (Mpc).

    Safeguarded Newton iterations on :func:`conditional_cdf` inside a bracket that
    shrinks at every step (bisection when a Newton step leaves it).

    Examples
    --------
    >>> _, _, n = moments(10.0, 5.0)
    >>> round(float(conditional_ppf(0.07836, 10.0, 5.0, n)), 4)
    8.0
    """
    p_a, mu_a, sigma_a, norm_a = _arrays(p, mu, sigma, norm)
    finite = np.isfinite(mu_a) & (norm_a > 0) & (p_a > 0) & (p_a < 1)
    mean, std, _ = moments(np.where(finite, mu_a, 1.0), np.where(finite, sigma_a, 1.0))
    # F(mean - 12 std) = 0 and F(mean + 12 std) = 1 to double precision (Chebyshev's
    # bound is loose: the tails of the ansatz are Gaussian).
    lo = np.maximum(mean - 12.0 * std, 0.0)
    hi = mean + 12.0 * std
    # Start: the bracket narrowed to one step of a 64-point grid of F, and the linear
    # interpolation inside it; Newton then converges in a few steps.
    grid = lo[..., None] + (hi - lo)[..., None] * np.linspace(0.0, 1.0, _GRID + 1)
    cdf = conditional_cdf(grid, mu_a[..., None], sigma_a[..., None], norm_a[..., None])
    cdf = np.where(finite[..., None], cdf, 0.0)
    above = np.clip(np.sum(cdf < p_a[..., None], axis=-1), 1, _GRID)
    take = above[..., None]
    lo = np.take_along_axis(grid, take - 1, axis=-1)[..., 0]
    hi = np.take_along_axis(grid, take, axis=-1)[..., 0]
    f_lo = np.take_along_axis(cdf, take - 1, axis=-1)[..., 0]
    f_hi = np.take_along_axis(cdf, take, axis=-1)[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(f_hi > f_lo, lo + (hi - lo) * (p_a - f_lo) / (f_hi - f_lo), 0.5 * (lo + hi))
    r = np.where(finite, r, 1.0)
    for _ in range(_MAX_ITERATIONS):
        f = conditional_cdf(r, mu_a, sigma_a, norm_a) - p_a
        f = np.where(finite, f, 0.0)
        lo = np.where(f < 0, r, lo)
        hi = np.where(f > 0, r, hi)
        slope = conditional_pdf(r, mu_a, sigma_a, norm_a)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = r - f / slope
        inside = np.isfinite(step) & (step > lo) & (step < hi)
        new = np.where(inside, step, 0.5 * (lo + hi))
        done = np.abs(new - r) <= 1e-13 * np.maximum(np.abs(r), 1e-300)
        r = np.where(finite, new, r)
        if bool(np.all(done | ~finite)):
            break
    out = np.where(finite, r, np.nan)
    out = np.where(np.isfinite(mu_a) & (p_a <= 0), 0.0, out)
    return np.where(np.isfinite(mu_a) & (p_a >= 1), np.inf, out)


def volume_density(prob_density_sr: npt.ArrayLike, r: npt.ArrayLike, mu: npt.ArrayLike,
                   sigma: npt.ArrayLike, norm: npt.ArrayLike) -> FloatArray:
    """3D posterior density ``dP/dV`` at distance ``r`` on a line of sight (Mpc**-3).

    ``rho(n) p(r | n) / r**2``, as ligo.skymap's ``crossmatch`` (``cosmology=False``).

    Examples
    --------
    >>> _, _, n = moments(40.0, 8.0)
    >>> float(volume_density(1.0, 40.0, 40.0, 8.0, n)) == float(
    ...     conditional_pdf(40.0, 40.0, 8.0, n)) / 40.0**2
    True
    """
    rho, r_a, mu_a, sigma_a, norm_a = _arrays(prob_density_sr, r, mu, sigma, norm)
    with np.errstate(invalid="ignore", over="ignore"):
        out = rho * norm_a * _phi((r_a - mu_a) / sigma_a) / sigma_a
    return np.where(np.isfinite(mu_a), np.where(r_a > 0, out, 0.0), np.nan)


def distance_p_value(d: npt.ArrayLike, d_err: npt.ArrayLike, mu: npt.ArrayLike,
                     sigma: npt.ArrayLike, norm: npt.ArrayLike) -> FloatArray:
    """Two-sided consistency of measured distances ``d ± d_err`` with the posterior.

    ``F(d) = E[Φ((d - r) / d_err)]`` over the posterior of ``r`` (the mean over
    256 equally spaced quantiles), ``F = conditional_cdf(d)`` when ``d_err = 0``;
    the p-value is ``2 min(F, 1 - F)``: 1 at the posterior's median, small in its
    tails.

    Examples
    --------
    >>> _, _, n = moments(40.0, 8.0)
    >>> median = float(conditional_ppf(0.5, 40.0, 8.0, n))
    >>> round(float(distance_p_value(median, 0.0, 40.0, 8.0, n)), 6)
    1.0
    >>> float(distance_p_value(200.0, 5.0, 40.0, 8.0, n)) < 1e-6
    True
    """
    d_a, err_a, mu_a, sigma_a, norm_a = _arrays(d, d_err, mu, sigma, norm)
    shape = d_a.shape
    d_f, err_f, mu_f, sigma_f, norm_f = (a.reshape(-1) for a in (d_a, err_a, mu_a,
                                                                  sigma_a, norm_a))
    quantiles = (np.arange(_STEP_QUANTILES) + 0.5) / _STEP_QUANTILES
    r = conditional_ppf(quantiles[None, :], mu_f[:, None], sigma_f[:, None],
                        norm_f[:, None])
    with np.errstate(divide="ignore", invalid="ignore"):
        smeared = ndtr((d_f[:, None] - r) / err_f[:, None]).mean(axis=1)
    exact = conditional_cdf(d_f, mu_f, sigma_f, norm_f)
    cdf = np.where(err_f > 0, smeared, exact)
    p = np.minimum(2.0 * np.minimum(cdf, 1.0 - cdf), 1.0)
    return np.where(np.isfinite(mu_f) & np.isfinite(d_f), p, np.nan).reshape(shape)


def absolute_magnitude(mag: npt.ArrayLike, distance_mpc: npt.ArrayLike) -> FloatArray:
    """``M = m - 5 log10(d / Mpc) - 25`` (no extinction, no K-correction).

    Examples
    --------
    >>> round(float(absolute_magnitude(17.5, 40.0)), 3)  # AT2017gfo-like at 40 Mpc
    -15.51
    """
    m, d = _arrays(mag, distance_mpc)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(m - 5.0 * np.log10(d) - 25.0, dtype=np.float64)


def fits_range(bright: float | None, faint: float | None,
               limits: tuple[float, ...]) -> bool | None:
    """Whether the absolute-magnitude interval ``[bright, faint]`` meets a range.

    Examples
    --------
    >>> fits_range(-16.4, -15.2, (-17.5, -11.5)), fits_range(-22.0, -21.0, (-17.5, -11.5))
    (True, False)
    >>> fits_range(None, None, (-17.5, -11.5)) is None
    True
    """
    if bright is None or faint is None or not np.isfinite(bright) or not np.isfinite(faint):
        return None
    low, high = min(limits), max(limits)
    return bool(bright <= high and faint >= low)

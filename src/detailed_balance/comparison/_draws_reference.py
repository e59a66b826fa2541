"""The reference of ``draws-smc``: a Gaussian fitted to posterior draws, from which tempered SMC
(``_smc.temper``) reaches the posterior in a few temperatures where the Laplace fit does not.

Why not the Laplace fit on the hierarchical models: their joint mode is not where the posterior
is. In the non-centred edge term ``u = mu_u + ... + sigma_u u_z`` the mode sits at a large
``sigma_u`` with small, precisely determined ``u_z``, while the posterior has ``sigma_u`` small
and ``u_z`` near its N(0, 1) prior (measured on the scale benchmark's reversible chain at 100
states: log sigma_u 1.49 at the mode against −3.57 ± 0.4 in the NUTS draws, 12.6 Laplace sd
away, and the 200 ``u_z`` coordinates 27–125× wider than the fit). Tempering from there took
136 temperatures at 30 states and 400 without arriving at 300 states; from a Gaussian of the
draws, 13 and 25 (docs/readme/bench-scale.md).
"""

from __future__ import annotations

import numpy as np

from ._tempering import MAX_DENSE_DIM
from ._variational import _ShrunkGaussian


class DrawsReference:
    """``N(m, C)`` with ``m`` the draws' mean and ``C`` their covariance, its correlation shrunk
    towards the identity (Ledoit–Wolf, as the variational bounds' ``q``), as the reference π_0
    of :func:`~detailed_balance.comparison._smc.temper`.

    Any reference gives the same log Z in expectation (the tempering corrects what it misses),
    so the draws need not be exact posterior draws: they only set how far the tempering has to
    go. ``log_q`` is a dense ``D × D`` product per particle (at 903 parameters ~0.8 M flops, less
    than a model gradient; up to ``MAX_DENSE_DIM`` parameters).
    """

    label = "a Gaussian of the posterior draws"

    def __init__(self, z: np.ndarray):
        import jax.numpy as jnp
        from scipy.linalg import cho_solve

        z = np.asarray(z, dtype=float).reshape(-1, np.shape(z)[-1])
        self.n_draws, self.dim = z.shape
        fit = _ShrunkGaussian(z)
        self.rho = fit.rho
        corr = fit.rho * np.eye(self.dim) + fit.u @ fit.u.T
        cov = fit.sd[:, None] * corr * fit.sd[None, :]
        self._chol = np.linalg.cholesky(cov)  # positive definite: rho > 0 on the diagonal
        precision = cho_solve((self._chol, True), np.eye(self.dim))
        self._mean = fit.mean
        self._mean_j = jnp.asarray(fit.mean)
        self._precision = jnp.asarray(0.5 * (precision + precision.T))
        self._const = -float(np.sum(np.log(np.diag(self._chol)))) - 0.5 * self.dim * np.log(
            2 * np.pi
        )

    def draw(self, key, n: int) -> np.ndarray:
        """``n`` independent draws, an (n, D) array."""
        import jax

        e = np.asarray(jax.random.normal(key, (n, self.dim)))
        return self._mean + e @ self._chol.T

    def log_q(self, x):
        """``(log q(x), ∇ log q(x))`` at one point (JAX)."""
        import jax.numpy as jnp

        d = x - self._mean_j
        pd = self._precision @ d
        return self._const - 0.5 * jnp.dot(d, pd), -pd

    def caveats(self) -> str:
        """What the note says about the draws behind the reference."""
        out = f"; reference from {self.n_draws} draws (correlation shrinkage {self.rho:.2f})"
        if self.n_draws < self.dim:
            out += f", fewer draws than the {self.dim} parameters"
        return out


def draws_reference(model, model_kwargs: dict, samples: dict, key):
    """``(log_p, DrawsReference)``: the model's flat log density (one point, JAX) and the
    reference of its posterior draws (constrained, site -> (chains, draws, ...), as
    :func:`detailed_balance.inference.latent_draws` gives); or the reason the reference cannot
    be built (one line)."""
    from ._evidence import _flat_model, unconstrained_draws

    _, _, _, log_p, _ = _flat_model(model, model_kwargs, key)
    z, _ = unconstrained_draws(model, model_kwargs, samples)
    chains, draws, dim = z.shape
    if dim > MAX_DENSE_DIM:
        return f"{dim} parameters: beyond the dense reference ({MAX_DENSE_DIM})"
    if chains * draws < 10:
        return f"{chains * draws} posterior draws: too few for a reference (at least 10)"
    if not np.all(np.isfinite(z)):
        return "the posterior draws are not finite in the unconstrained space"
    return log_p, DrawsReference(z)

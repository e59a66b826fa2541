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

from ._variational import _ShrunkGaussian

DRAWS_RANK = 50  # principal components of the reference (docs/readme/bench-scale.md: measured)


class DrawsReference:
    """``N(m, C)``, ``C = diag(s) (Ψ + W Wᵀ) diag(s)``: ``m`` and ``s`` the draws' mean and sd,
    ``W Wᵀ`` the top ``rank`` principal components of their Ledoit–Wolf-shrunk correlation
    (as the variational bounds' ``q``) and the diagonal ``Ψ`` that keeps every marginal
    variance the draws' (a factor-analysis form; ``rank`` ≥ the draws gives the shrunk
    correlation itself, Ψ = the shrinkage weight), as the reference π_0 of
    :func:`~detailed_balance.comparison._smc.temper`.

    Any reference gives the same log Z in expectation (the tempering corrects what it misses),
    so the draws need not be exact posterior draws, and the dropped components only cost
    temperatures. ``log_q`` and its gradient cost O(D × rank) per particle (Woodbury), not a
    dense D × D product, so there is no size limit beyond the draws' own memory.
    """

    label = "a Gaussian of the posterior draws"

    def __init__(self, z: np.ndarray, rank: int | None = None):
        import jax.numpy as jnp

        z = np.asarray(z, dtype=float).reshape(-1, np.shape(z)[-1])
        self.n_draws, self.dim = z.shape
        fit = _ShrunkGaussian(z)  # correlation rho I + U Uᵀ, U = sqrt((1 - rho) / n) yᵀ
        self.rho = fit.rho
        # the top principal directions of U Uᵀ from the n × n UᵀU: W = U B_k (D × k)
        lam, b = np.linalg.eigh(fit.small)
        keep = np.argsort(lam)[::-1][: min(self.n_draws, self.dim if rank is None else rank)]
        keep = keep[lam[keep] > 1e-12 * max(lam.max(), 1e-300)]  # centred draws: rank ≤ n − 1
        w = fit.u @ b[:, keep]
        self.rank = w.shape[1]
        self._psi = np.maximum(1.0 - np.sum(w**2, axis=1), fit.rho)  # unit diagonal, ≥ rho
        self._w, self._sd, self._mean = w, fit.sd, fit.mean
        # (Ψ + W Wᵀ)⁻¹ = Ψ⁻¹ − G Gᵀ with G = Ψ⁻¹ W L⁻ᵀ, L Lᵀ = I + Wᵀ Ψ⁻¹ W (k × k)
        chol = np.linalg.cholesky(np.eye(self.rank) + w.T @ (w / self._psi[:, None]))
        g = np.linalg.solve(chol, (w / self._psi[:, None]).T).T
        log_det = 2 * np.sum(np.log(fit.sd)) + np.sum(np.log(self._psi))  # of C
        log_det += 2 * np.sum(np.log(np.diag(chol)))
        self._const = -0.5 * (log_det + self.dim * np.log(2 * np.pi))
        self._j = tuple(jnp.asarray(a) for a in (fit.mean, fit.sd, 1.0 / self._psi, g))

    def draw(self, key, n: int) -> np.ndarray:
        """``n`` independent draws, an (n, D) array."""
        import jax

        k1, k2 = jax.random.split(key)
        e1 = np.asarray(jax.random.normal(k1, (n, self.dim)))
        e2 = np.asarray(jax.random.normal(k2, (n, self.rank)))
        return self._mean + self._sd * (np.sqrt(self._psi) * e1 + e2 @ self._w.T)

    def log_q(self, x):
        """``(log q(x), ∇ log q(x))`` at one point (JAX), O(D × rank)."""
        import jax.numpy as jnp

        mean, sd, psi_inv, g = self._j
        y = (x - mean) / sd
        py = psi_inv * y - g @ (g.T @ y)  # (Ψ + W Wᵀ)⁻¹ y
        return self._const - 0.5 * jnp.dot(y, py), -py / sd

    def caveats(self) -> str:
        """What the note says about the draws behind the reference."""
        out = (
            f"; reference from {self.n_draws} draws (correlation shrinkage {self.rho:.2f}, "
            f"{self.rank} principal components)"
        )
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
    if chains * draws < 10:
        return f"{chains * draws} posterior draws: too few for a reference (at least 10)"
    if not np.all(np.isfinite(z)):
        return "the posterior draws are not finite in the unconstrained space"
    stuck = int(np.sum(np.ptp(z.reshape(-1, dim), axis=0) == 0))
    if stuck:  # a zero-width reference there: the tempering could never move its particles
        return (
            f"the posterior draws do not vary in {stuck} of their {dim} unconstrained coordinates"
        )
    return log_p, DrawsReference(z, DRAWS_RANK)

"""What ``laplace-ais`` (``_annealed``) and ``laplace-smc`` (``_smc``) share: the Laplace
reference, the next temperature of an adaptive schedule, and the HMC move of particles on the
tempered density ``q^(1-β) p^β``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import logsumexp

from ._evidence import Evidence, _flat_model

MAX_DENSE_DIM = 6000  # the reference's dense Cholesky factor: D² floats (6000: 290 MB)


@dataclass(frozen=True)
class Laplace:
    """The Laplace fit of a model in NumPyro's unconstrained space: ``N(mode, P⁻¹)`` with the
    precision ``P = chol cholᵀ`` the negative Hessian at the mode (``+ shift × I`` where that
    is not positive definite: the tempering corrects what the reference misses)."""

    log_p: object  # the flat unconstrained log density (prior × likelihood × Jacobian), jitted
    mode: np.ndarray
    chol: np.ndarray  # lower Cholesky factor of the precision
    shift: float  # added to the Hessian's diagonal (0: it was positive definite)
    grad_norm: float  # largest |gradient| where the mode search stopped

    @property
    def dim(self) -> int:
        return len(self.mode)

    @property
    def half_log_det(self) -> float:
        """½ log det of the precision."""
        return float(np.sum(np.log(np.diag(self.chol))))

    def caveats(self) -> str:
        """What the estimate's note says about a rough reference ("" when there is nothing)."""
        out = ""
        if self.shift:
            out += f"; Hessian not positive definite at the mode (shifted by {self.shift:.2g})"
        if self.grad_norm > 1e-3:
            out += (
                f"; the mode search stopped at gradient {self.grad_norm:.2g} (the reference is "
                "rougher)"
            )
        return out


def laplace_reference(model, model_kwargs: dict, key, method: str) -> Laplace | Evidence:
    """The model's :class:`Laplace` fit, or a refused ``Evidence`` of ``method`` beyond
    ``MAX_DENSE_DIM`` parameters.

    A Hessian that is not positive definite is shifted (every eigenvalue raised alike until the
    smallest is 1e-3 × the median |diagonal|). laplace-smc needs the shift (its ``log q`` is a
    Hessian-vector product plus ``shift × d``); laplace-ais used to floor the eigenvalues
    instead, which on the reversible model at 10 states (mode search stopped at gradient 130)
    left a reference so wide in the floored directions that its weights had Pareto k̂ 59.6
    (log Z −601.0 ± 1.2 against laplace-smc's −551.3 ± 0.4); with the shift, k̂ 0.78 and
    −555.2 ± 0.3, still refused (seed 0)."""
    _, _, _, log_p, x0 = _flat_model(model, model_kwargs, key)
    dim = int(x0.shape[0])
    if dim > MAX_DENSE_DIM:
        return Evidence(
            np.nan, np.nan, method, False,
            f"{dim} parameters: beyond the dense Laplace reference ({MAX_DENSE_DIM})",
        )  # fmt: skip
    mode, hess, grad_norm = _mode_and_hessian(log_p, x0)
    chol, shift = shifted_cholesky(hess)
    return Laplace(log_p, mode, chol, shift, grad_norm)


def shifted_cholesky(hess: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``hess + shift × I`` and the shift: 0 when ``hess`` is positive
    definite, else what raises its smallest eigenvalue to 1e-3 × the median |diagonal| (at
    least 1e-8). A strict maximum is needed for the reference ``q``; where the curvature at the
    point the mode search stopped is not positive, every direction is raised alike."""
    try:
        return np.linalg.cholesky(hess), 0.0
    except np.linalg.LinAlgError:
        lam_min = float(np.linalg.eigvalsh(hess)[0])
        shift = max(1e-3 * float(np.median(np.abs(np.diag(hess)))), 1e-8) - lam_min
        return np.linalg.cholesky(hess + shift * np.eye(len(hess))), shift


def _mode_and_hessian(log_p, x0):
    """Mode (L-BFGS) and negative Hessian of ``log_p`` there, as float64 numpy arrays."""
    import jax
    import jax.numpy as jnp
    from scipy.optimize import minimize

    value_and_grad = jax.jit(jax.value_and_grad(lambda x: -log_p(x)))

    def fun(x):
        v, g = value_and_grad(jnp.asarray(x))
        v, g = float(v), np.asarray(g, dtype=float)
        if not np.isfinite(v):
            return 1e300, np.zeros_like(g)
        return v, g

    res = minimize(
        fun, np.asarray(x0, dtype=float), jac=True, method="L-BFGS-B",
        options={"maxiter": 20_000, "maxcor": 30, "ftol": 1e-14, "gtol": 1e-8},
    )  # fmt: skip
    mode = res.x
    grad = jax.grad(log_p)
    hvp = jax.jit(jax.vmap(lambda v: jax.jvp(grad, (jnp.asarray(mode),), (v,))[1]))
    dim = len(mode)
    block = max(1, min(dim, 4_000_000 // max(dim, 1) // 8))  # bounded memory per batch
    eye = np.eye(dim)
    hess = -np.concatenate([np.asarray(hvp(eye[i : i + block])) for i in range(0, dim, block)])
    return mode, 0.5 * (hess + hess.T), float(np.max(np.abs(res.jac)))


def next_beta(log_w: np.ndarray, ell: np.ndarray, beta: float, target: float) -> float:
    """Largest β' ≤ 1 whose increment (β' - β) ℓ keeps the conditional ESS ≥ target × N."""
    ell = np.where(np.isfinite(ell), ell, -np.inf)
    lw = log_w - logsumexp(log_w)  # normalised current weights

    def cess(b):
        inc = (b - beta) * ell
        # (Σ W w)² / Σ W w² with normalised W: the fraction of particles the step keeps
        return float(np.exp(2 * logsumexp(lw + inc) - logsumexp(lw + 2 * inc)))

    if cess(1.0) >= target:
        return 1.0
    lo, hi = beta, 1.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if cess(mid) >= target:
            lo = mid
        else:
            hi = mid
    return max(lo, beta + 1e-9)


def tempered(log_p, log_q):
    """``(ell, log_pi)`` of the path ``q^(1-β) p^β``, for JAX functions of one point.

    ``log_q(x)`` gives the reference's log density and its gradient. ``ell(x)`` is
    ``(ℓ, ∇ℓ, log q, ∇log q)`` with ``ℓ = log p/q`` (the log weight per unit β; −∞ with a zero
    gradient where it is not finite); ``log_pi(x, β)`` is ``(log π_β, ∇log π_β, ℓ)``.
    """
    import jax
    import jax.numpy as jnp

    def ell(x):
        lp, gp = jax.value_and_grad(log_p)(x)
        lq, gq = log_q(x)
        v = lp - lq
        ok = jnp.isfinite(v)
        return jnp.where(ok, v, -jnp.inf), jnp.where(ok, gp - gq, 0.0), lq, gq

    def log_pi(x, beta):
        v, g, lq, gq = ell(x)
        return lq + beta * v, gq + beta * g, v

    return ell, log_pi


def hmc_moves(log_pi, leapfrog: int, rounds: int):
    """Jitted ``(key, xs, β, eps, var) -> (xs, ℓ at xs, mean acceptance)``: ``rounds`` HMC
    moves of every particle (rows of ``xs``) on π_β, each of ``leapfrog`` steps of a size
    jittered around ``eps``, with the mass matrix diag(1 / var)."""
    import jax
    import jax.numpy as jnp

    def hmc(key, x, beta, eps, var):
        """One HMC move on π_β with mass diag(1/var) and a jittered step size."""
        k_mom, k_eps, k_acc = jax.random.split(key, 3)
        sd = jnp.sqrt(var)
        p0 = jax.random.normal(k_mom, x.shape) / sd
        step = eps * jax.random.uniform(k_eps, minval=0.8, maxval=1.2)
        l0, g0, e0 = log_pi(x, beta)

        def body(_, carry):
            y, p, g, _l, _e = carry
            p = p + 0.5 * step * g
            y = y + step * var * p
            ly, g, ey = log_pi(y, beta)
            p = p + 0.5 * step * g
            return y, p, g, ly, ey

        y, p, _, l1, e1 = jax.lax.fori_loop(0, leapfrog, body, (x, p0, g0, l0, e0))
        h0 = -l0 + 0.5 * jnp.dot(p0, var * p0)
        h1 = -l1 + 0.5 * jnp.dot(p, var * p)
        log_acc = jnp.where(jnp.isfinite(h1), jnp.minimum(0.0, h0 - h1), -jnp.inf)
        accept = jnp.log(jax.random.uniform(k_acc)) < log_acc
        return jnp.where(accept, y, x), jnp.where(accept, e1, e0), jnp.exp(log_acc)

    @jax.jit
    def mutate(key, xs, beta, eps, var):
        n = xs.shape[0]

        def one(carry, k):
            xs, _ = carry
            out = jax.vmap(hmc, in_axes=(0, 0, None, None, None))(
                jax.random.split(k, n), xs, beta, eps, var
            )
            return (out[0], out[1]), out[2]

        (xs, es), acc = jax.lax.scan(one, (xs, jnp.zeros(n)), jax.random.split(key, rounds))
        return xs, es, jnp.mean(acc)

    return mutate


def first_step(dim: int) -> float:
    """The HMC step size to start from, in units of the reference's (or mass matrix's) scale."""
    return min(1.0, 1.5 * dim**-0.25)


def adapt_step(eps: float, acc: float, grow: float) -> float:
    """The step size for the next moves: smaller below 0.6 acceptance, × ``grow`` above 0.9
    (the kernel stays valid at every step size; this keeps its acceptance in a useful band)."""
    return eps * (0.7 if acc < 0.6 else (grow if acc > 0.9 else 1.0))

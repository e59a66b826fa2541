"""Log evidence (marginal likelihood) of the models of the ladder.

* :func:`log_evidence_dirichlet`: exact, closed form, for the unconstrained (Dirichlet-row) model.
* :func:`bridge_sampling`: numerical, for any model, from posterior draws: the iterative
  Meng & Wong (1996) bridge estimator with a Gaussian proposal fitted to the draws in NumPyro's
  unconstrained space (as R's ``bridgesampling``, Gronau et al. 2020), with its Monte Carlo
  standard error from the Frühwirth-Schnatter (2004) formula (autocorrelation-aware).

Likelihood convention (``models/_common.py``): every attempt is one categorical draw from its
source's row over (support neighbours + rest); no multinomial coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, gammaln, logsumexp

from .counts import TransitionCounts
from .modeldata import ModelData, build_model_data


@dataclass(frozen=True)
class Evidence:
    """A log evidence with its Monte Carlo standard error (``se = 0`` when exact).

    ``converged`` is False when the estimator failed (the iteration did not settle, or the
    error is not finite); ``note`` then says why, and ``log_z``/``se`` must not be reported alone.
    """

    log_z: float
    se: float
    method: str
    converged: bool = True
    note: str = ""
    n_draws: int = 0

    def to_dict(self) -> dict:
        return {
            "log_z": _json_float(self.log_z),
            "se": _json_float(self.se),
            "method": self.method,
            "converged": self.converged,
            "note": self.note,
            "n_draws": self.n_draws,
        }


def _json_float(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


# ---------------------------------------------------------------------------------------------
# exact evidence of the unconstrained model
# ---------------------------------------------------------------------------------------------
def log_evidence_dirichlet(
    counts: TransitionCounts | ModelData, alpha: float = 1.0, *, rest: bool = True
) -> float:
    """Exact log evidence of the unconstrained model (independent Dirichlet(alpha) rows).

    Row i's categories are its support-graph neighbours plus ``rest`` (self + rejected), as in
    ``models/unconstrained.py``. Sparse: cells with zero count contribute nothing, so the cost
    grows with the observed cells, not with states².

    log p(C) = Σ_i [lnΓ(K_i α) − lnΓ(K_i α + n_i) + Σ_{j: C_ij>0} (lnΓ(α + C_ij) − lnΓ(α))]

    Parameters
    ----------
    counts : TransitionCounts or ModelData
    alpha : float
        Dirichlet concentration of every category.
    rest : bool
        Model self-replies and rejections as a ``rest`` category of every row.

    Returns
    -------
    float
        log p(counts), natural log, with the package's per-attempt likelihood convention (no
        multinomial coefficient).

    Examples
    --------
    Two states, each row with two categories (the other state, and ``rest``): Beta integrals,
    B(4, 2) · B(3, 3) / B(1, 1)² = 1/600.

    >>> import math, pathlib, tempfile
    >>> from detailed_balance.formats import read_counts
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "counts.csv"
    >>> _ = path.write_text("source,target,count\\nA,B,3\\nA,,1\\nB,A,2\\nB,,2\\n")
    >>> math.isclose(log_evidence_dirichlet(read_counts(path)), math.log(1 / 600))
    True
    """
    if alpha <= 0:
        raise ValueError("alpha must be > 0 (alpha = 0 is an improper prior with no evidence)")
    data = counts if isinstance(counts, ModelData) else build_model_data(counts, rest=rest)
    n = data.n_states
    n_cat = np.bincount(data.arc_source, minlength=n) + (1 if data.has_rest else 0)
    n_row = np.bincount(data.arc_source, weights=data.arc_count, minlength=n)
    if data.has_rest:
        n_row = n_row + data.rest_count
    cells = np.concatenate([data.arc_count[data.cell_arc], data.rest_count[data.cell_rest]])
    rows = n_row > 0
    k_alpha = n_cat[rows] * alpha
    total = np.sum(gammaln(k_alpha) - gammaln(k_alpha + n_row[rows]))
    total += np.sum(gammaln(alpha + cells) - gammaln(alpha))
    return float(total)


# ---------------------------------------------------------------------------------------------
# bridge sampling
# ---------------------------------------------------------------------------------------------
def unconstrained_draws(model, model_kwargs: dict, samples: dict, *, seed: int = 0):
    """Map posterior draws of a NumPyro model's latent sites to its unconstrained space.

    Parameters
    ----------
    samples : dict of site -> array (chains, draws, ...) in the constrained space.

    Returns
    -------
    z : (chains, draws, D) array, ``log_density`` : callable on (N, D) arrays returning the
    log of prior × likelihood × Jacobian (minus NumPyro's potential energy), vectorised.
    """
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(seed), model, model_kwargs=model_kwargs)
    trace = info.model_trace
    latent = [
        name for name, site in trace.items() if site["type"] == "sample" and not site["is_observed"]
    ]
    for name in latent:
        if _improper(trace[name]["fn"]):
            raise ValueError(f"site {name!r} has an improper prior: the evidence is undefined")
    missing = [name for name in latent if name not in samples]
    if missing:
        raise ValueError(f"posterior draws lack the latent site(s) {missing}")
    transforms = {name: biject_to(trace[name]["fn"].support) for name in latent}
    first = np.asarray(samples[latent[0]])
    chains, draws = first.shape[:2]
    flat = {
        k: jnp.asarray(np.asarray(samples[k]).reshape((chains * draws,) + np.shape(samples[k])[2:]))
        for k in latent
    }
    _, unravel = ravel_pytree(info.param_info.z)  # unconstrained shapes (ZeroSum: n - 1)

    def to_z(one):
        return ravel_pytree({k: transforms[k].inv(v) for k, v in one.items()})[0]

    z = jax.vmap(to_z)(flat)
    potential = jax.jit(jax.vmap(lambda x: -info.potential_fn(unravel(x))))

    def log_density(x):
        out = []
        for start in range(0, len(x), 4096):  # bounded memory on large draw sets
            out.append(np.asarray(potential(jnp.asarray(x[start : start + 4096])), dtype=float))
        return np.concatenate(out)

    return np.asarray(z, dtype=float).reshape(chains, draws, -1), log_density


def _improper(fn) -> bool:
    from numpyro.distributions import ImproperUniform

    base = fn
    while hasattr(base, "base_dist"):
        base = base.base_dist
    return isinstance(base, ImproperUniform)


def bridge_sampling(
    model,
    model_kwargs: dict,
    samples: dict,
    *,
    seed: int = 0,
    n_proposal: int | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    warp3: bool = True,
) -> Evidence:
    """Log evidence of ``model`` by iterative bridge sampling on posterior draws.

    The first half of each chain fits a Gaussian proposal (mean, covariance) in the unconstrained
    space; the second half and as many proposal draws enter the Meng–Wong fixed-point iteration
    (optimal bridge). The standard error is the square root of the relative mean squared error of
    Frühwirth-Schnatter (2004), with the effective sample size of the posterior term.

    Parameters
    ----------
    model, model_kwargs : the NumPyro model and its keyword arguments (``data``, ``prior``...).
    samples : dict site -> (chains, draws, ...) constrained posterior draws (e.g. an ArviZ
        posterior's variables as numpy arrays); every latent sample site must be present.
    """
    z, log_density = unconstrained_draws(model, model_kwargs, samples, seed=seed)
    return bridge_from_draws(
        z, log_density, seed=seed, n_proposal=n_proposal, max_iter=max_iter, tol=tol, warp3=warp3
    )


def bridge_from_draws(
    z: np.ndarray,
    log_density,
    *,
    seed: int = 0,
    n_proposal: int | None = None,
    max_iter: int = 1000,
    tol: float = 1e-10,
    warp3: bool = True,
) -> Evidence:
    """Bridge sampling from unconstrained draws ``z`` (chains, draws, D) and a vectorised
    ``log_density`` ((N, D) -> (N,): log prior × likelihood × Jacobian); see
    :func:`bridge_sampling`.
    """
    chains, draws, dim = z.shape
    half = draws // 2
    if half < 10:
        return Evidence(
            np.nan, np.nan, "bridge", False, "too few posterior draws for bridge sampling"
        )
    fit_part = z[:, :half].reshape(-1, dim)
    bridge_part = z[:, half:]
    n1 = bridge_part.shape[0] * bridge_part.shape[1]
    if fit_part.shape[0] <= dim:
        return Evidence(
            np.nan,
            np.nan,
            "bridge",
            False,
            f"{fit_part.shape[0]} draws cannot fit a {dim}-dimensional proposal: draw more",
        )
    mean = fit_part.mean(axis=0)
    cov = np.cov(fit_part, rowvar=False).reshape(dim, dim)
    cov += 1e-9 * np.trace(cov) / dim * np.eye(dim)
    chol = np.linalg.cholesky(cov)
    log_det = float(np.sum(np.log(np.diag(chol))))
    n2 = n_proposal or n1
    rng = np.random.default_rng(seed)
    prop = rng.standard_normal((n2, dim))  # proposal N(0, I) in the standardised space

    def log_g(u):
        return -0.5 * np.sum(u**2, axis=1) - 0.5 * dim * np.log(2 * np.pi)

    def log_q(u):
        # density of the standardised draws u = L^-1 (z - mean); with warp3, symmetrised about 0
        x = mean + u @ chol.T
        if not warp3:
            return log_density(x) + log_det
        y = mean - u @ chol.T
        return np.logaddexp(log_density(x), log_density(y)) - np.log(2.0) + log_det

    post_u = np.linalg.solve(chol, (bridge_part.reshape(-1, dim) - mean).T).T
    l1 = log_q(post_u) - log_g(post_u)  # log q/g at posterior draws
    l2 = log_q(prop) - log_g(prop)  # log q/g at proposal draws
    if not np.all(np.isfinite(l1)):
        return Evidence(
            np.nan, np.nan, "bridge", False, "non-finite log density at posterior draws"
        )
    l2 = np.where(np.isfinite(l2), l2, -np.inf)  # a proposal draw outside the support weighs 0
    log_z, iterations, converged = _meng_wong(l1, l2, max_iter, tol)
    if not converged:
        return Evidence(
            log_z,
            np.nan,
            "bridge",
            False,
            f"bridge iteration did not converge in {max_iter} steps",
            n1,
        )
    se = _bridge_se(l1.reshape(chains, -1), l2, log_z)
    ok = bool(np.isfinite(se))
    note = f"Gaussian proposal in {dim} unconstrained dimensions; {iterations} iterations"
    if not ok:
        note = "the Monte Carlo error of the bridge estimate is not finite (poor proposal overlap)"
    return Evidence(float(log_z), float(se), "bridge", ok, note, n1)


def _meng_wong(
    l1: np.ndarray, l2: np.ndarray, max_iter: int, tol: float
) -> tuple[float, int, bool]:
    """Fixed point of the optimal bridge, in logs (no overflow), started at the median of l1."""
    n1, n2 = len(l1), len(l2)
    ls1, ls2 = np.log(n1 / (n1 + n2)), np.log(n2 / (n1 + n2))
    shift = np.median(l1)
    a1, a2 = l1 - shift, l2 - shift
    log_r = 0.0
    for it in range(1, max_iter + 1):
        num = logsumexp(a2 - np.logaddexp(ls1 + a2, ls2 + log_r)) - np.log(n2)
        den = logsumexp(-np.logaddexp(ls1 + a1, ls2 + log_r)) - np.log(n1)
        new = num - den
        if not np.isfinite(new):
            return float("nan"), it, False
        if abs(new - log_r) < tol:
            return float(new + shift), it, True
        log_r = new
    return float(log_r + shift), max_iter, False


def _bridge_se(l1: np.ndarray, l2: np.ndarray, log_z: float) -> float:
    """Frühwirth-Schnatter's relative MSE of the bridge estimate, as a standard error of log Z.

    l1 : (chains, N1/chains) log q/g at posterior draws (autocorrelated);
    l2 : (N2,) log q/g at proposal draws.
    """
    from numpyro.diagnostics import effective_sample_size

    n1, n2 = l1.size, l2.size
    s1, s2 = n1 / (n1 + n2), n2 / (n1 + n2)
    # f1 = p/(s1 p + s2 g) at proposal draws, f2 = g/(s1 p + s2 g) at posterior draws (p = q/Z)
    # computed as logistic functions: no overflow when a density ratio is extreme
    f1 = expit(l2 - log_z + np.log(s1 / s2)) / s1
    f2 = expit(-(l1 - log_z) + np.log(s2 / s1)) / s2
    ess = float(effective_sample_size(f2[:, :, None].astype(float))[0]) if l1.shape[1] > 3 else n1
    ess = float(np.clip(ess if np.isfinite(ess) else n1, 1.0, n1))
    term1 = np.var(f1, ddof=1) / np.mean(f1) ** 2 / n2
    term2 = np.var(f2, ddof=1) / np.mean(f2) ** 2 / ess
    return float(np.sqrt(term1 + term2))

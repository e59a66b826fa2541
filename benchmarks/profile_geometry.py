"""Profile: where NUTS spends its steps on the reversible model (issue 15).

For each size (synthetic reversible chain, seed 0, 200 attempts per source), in one process:

1. NUTS as ``fit`` runs it (float32, 2 parallel chains, ``--warmup`` + ``--warmup`` draws):
   leapfrog steps per draw, adapted step size, divergences, min bulk ESS of V and of sigma_u.
2. The geometry the sampler sees: the Hessian of the potential (unconstrained space, float64) at
   three posterior draws, scaled by the adapted diagonal inverse mass ``D``. The step size is
   bounded by the largest eigenvalue of ``D^1/2 H D^1/2`` (leapfrog is unstable beyond
   ``2 / sqrt(lambda_max)``), the trajectory length by the smallest; each is printed with the
   share of its eigenvector on each site.
3. What a Laplace preconditioner would be: the mode of the unconstrained potential (L-BFGS) and
   the ratio of the Laplace variances (diagonal of the inverse Hessian at the mode) to the
   posterior variances, per site. Ratios far from 1 mean a Laplace mass matrix would be wrong
   there.
4. With ``--variants``: the same NUTS run on diagnostic variants of the model that are *not* the
   package's model: ``soft`` replaces the edge trend's ``|phi_a - phi_b|`` by
   ``sqrt((phi_a - phi_b)^2 + 0.3^2)`` (no kink), ``dense-phi`` adapts a dense mass block on phi.

Usage::

    python benchmarks/profile_geometry.py --sizes 300 1000
    python benchmarks/profile_geometry.py --sizes 300 --variants
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np


def run_nuts(model, warmup: int, **kw):
    import jax
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(NUTS(model, **kw), num_warmup=warmup, num_samples=warmup, num_chains=2,
                chain_method="parallel", progress_bar=False)  # fmt: skip
    names = ("phi_raw", "sigma_phi", "mu_u", "beta_u", "sigma_u", "u_z")
    fields = ("num_steps", "adapt_state.step_size", "diverging", *(f"z.{k}" for k in names))
    start = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(0), extra_fields=fields)
    seconds = time.perf_counter() - start
    return mcmc, mcmc.get_extra_fields(group_by_chain=True), seconds


def summary(label, mcmc, extra, seconds) -> None:
    from detailed_balance.inference import rhat_ess

    s = mcmc.get_samples(group_by_chain=True)
    _, ess = rhat_ess({k: np.asarray(s[k], float) for k in ("V", "sigma_u")})
    print(f"  {label}: {seconds:.0f} s, {np.mean(extra['num_steps']):.0f} leapfrog steps per "
          f"draw, step size {[round(float(e), 3) for e in extra['adapt_state.step_size'][:, -1]]}, "
          f"{int(extra['diverging'].sum())} divergences, min bulk ESS V {ess['V'].min():.0f}, "
          f"sigma_u {float(ess['sigma_u']):.0f} (per {extra['num_steps'].size} draws)",
          flush=True)  # fmt: skip


def reversible(data):
    """The reversible model bound to ``data`` and the default prior (what ``fit`` samples)."""
    from detailed_balance.models import MODELS, FieldPrior

    return lambda: MODELS["reversible"](data, prior=FieldPrior())


def soft_edge_term(data, prior, phi):
    """The package's edge term with the kink of |phi_a - phi_b| smoothed (diagnostic only)."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    a, b = data.arc_source[: data.n_edges], data.arc_target[: data.n_edges]
    mu = numpyro.sample("mu_u", dist.Normal(0.0, prior.edge_mean_scale))
    beta = numpyro.sample("beta_u", dist.Normal(0.0, prior.edge_trend_scale))
    sigma = numpyro.sample("sigma_u", dist.HalfNormal(prior.edge_scale))
    z = numpyro.sample("u_z", dist.Normal(0.0, 1.0).expand([data.n_edges]).to_event(1))
    d = phi[a] - phi[b]
    return numpyro.deterministic("u", mu + 0.5 * beta * jnp.sqrt(d * d + 0.09) + sigma * z)


def profile(n: int, warmup: int, variants: bool) -> None:
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model
    from scipy.optimize import minimize

    # the one internal: fit samples in float32 from a 32-bit copy of the model's arrays, and this
    # profile runs the program fit runs; the copy is fit's implementation detail, not a user's need
    from detailed_balance.inference._samplers import _narrow
    from detailed_balance.modeldata import build_model_data
    from detailed_balance.runtime import x64
    from detailed_balance.synthetic import reversible_chain, sample_counts

    counts = sample_counts(reversible_chain(n, seed=0), attempts_per_source=200, seed=0)
    data = build_model_data(counts)
    print(f"{n} states, {data.n_edges} edges", flush=True)
    with x64(False, all_threads=True):
        mcmc, extra, seconds = run_nuts(reversible(_narrow(data)), warmup)
        summary("NUTS (fit's settings, diagonal mass)", mcmc, extra, seconds)
        inv_mass = mcmc.last_state.adapt_state.inverse_mass_matrix
    (key,) = inv_mass  # one diagonal block over every site, in sorted site order
    d = np.asarray(inv_mass[key], float)[0]
    parts = [np.asarray(extra[f"z.{k}"], float) for k in key]
    parts = [p.reshape(p.shape[0] * p.shape[1], -1) for p in parts]  # (chains x draws, size)
    labels = np.concatenate([[k] * p.shape[1] for k, p in zip(key, parts, strict=True)])
    draws = np.concatenate(parts, axis=1)

    with jax.enable_x64(True):
        model = reversible(data)
        info = initialize_model(jax.random.PRNGKey(0), model)
        x0, unravel = ravel_pytree(info.param_info.z)
        assert list(key) == sorted(info.param_info.z)  # same order as the mass matrix

        def potential(x):
            return info.potential_fn(unravel(x))

        hessian = jax.jit(jax.hessian(potential))

        def share(vec):
            w = vec**2
            return ", ".join(f"{k} {w[labels == k].sum():.2f}" for k in key
                             if w[labels == k].sum() >= 0.05)  # fmt: skip

        value_and_grad = jax.jit(jax.value_and_grad(potential))
        res = minimize(lambda x: tuple(np.asarray(v, float) for v in value_and_grad(x)),
                       np.asarray(x0, float), jac=True, method="L-BFGS-B",
                       options={"maxiter": 20000, "maxcor": 30})  # fmt: skip
        cov = np.linalg.inv(np.asarray(hessian(jnp.asarray(res.x))))
        mode_sigma_u = float(np.exp(res.x[labels == "sigma_u"][0]))
        post_sigma_u = float(np.exp(np.median(draws[:, labels == "sigma_u"])))
        ratio = np.diag(cov) / draws.var(axis=0)
        per_site = ", ".join(f"{k} {np.median(ratio[labels == k]):.2g}" for k in key)
        print(f"  Laplace at the mode: sigma_u {mode_sigma_u:.3g} (posterior median "
              f"{post_sigma_u:.3g}); Laplace / posterior variance (median per site): {per_site}",
              flush=True)  # fmt: skip
        phi = labels == "phi_raw"
        block = np.diag(np.diag(cov))
        block[np.ix_(phi, phi)] = cov[np.ix_(phi, phi)]
        roots = {}
        for name, c in (("dense", cov), ("phi-block", block)):
            try:
                roots[name] = np.linalg.cholesky(c)
            except np.linalg.LinAlgError:
                print(f"    the {name} Laplace covariance is not positive definite", flush=True)

        for i in (0, len(draws) // 2, len(draws) - 1):
            h = np.asarray(hessian(jnp.asarray(draws[i])))
            ev, vec = np.linalg.eigh(h * np.sqrt(np.outer(d, d)))
            sigma_u = np.exp(draws[i][labels == "sigma_u"][0])
            print(f"  draw {i} (sigma_u {sigma_u:.3f}): eigenvalues of D^1/2 H D^1/2 from "
                  f"{ev[0]:.3g} ({share(vec[:, 0])}) to {ev[-1]:.3g} ({share(vec[:, -1])}); "
                  f"leapfrog stable below step {2 / np.sqrt(ev[-1]):.2f}", flush=True)  # fmt: skip
            # the same with the Laplace covariance as inverse mass: dense, and dense on phi only
            for name, root in roots.items():
                lap = np.linalg.eigvalsh(root.T @ h @ root)
                print(f"    with the {name} Laplace covariance as inverse mass: eigenvalues "
                      f"from {lap[0]:.3g} to {lap[-1]:.3g}", flush=True)  # fmt: skip

    if variants:
        mod = sys.modules["detailed_balance.models.reversible"]
        with x64(False, all_threads=True):
            narrow = _narrow(data)
            mcmc, extra, seconds = run_nuts(reversible(narrow), warmup, dense_mass=[("phi_raw",)])
            summary("dense-phi (adapted dense mass block on phi)", mcmc, extra, seconds)
            original, mod.edge_term = mod.edge_term, soft_edge_term
            try:
                mcmc, extra, seconds = run_nuts(reversible(narrow), warmup)
            finally:
                mod.edge_term = original
            summary("soft (kink of |phi_a - phi_b| smoothed: another model)", mcmc, extra,
                    seconds)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[300, 1000])
    parser.add_argument("--warmup", type=int, default=500, help="warm-up (= draws) per chain")
    parser.add_argument("--variants", action="store_true", help="also the diagnostic variants")
    args = parser.parse_args()

    import detailed_balance

    detailed_balance.configure(chains=2)
    warnings.simplefilter("ignore")
    for n in args.sizes:
        profile(n, args.warmup, args.variants)


if __name__ == "__main__":
    main()

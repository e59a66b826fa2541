"""Least action over posterior draws: one vmapped, jitted solve against a loop of scipy fits.

    python benchmarks/bench_least_action.py [--states 300] [--draws 1000] [--scipy-draws 20]

Draws of T come from the exact posterior of the unconstrained model given counts sampled from a
300-state reversible chain (:func:`diagnostics.unconstrained_posterior_kernel`; every draw has
both directions of every support edge). ``minimise_action`` solves all draws at once (damped
Newton-CG, jax, float64). The baseline is scipy's L-BFGS-B with an analytic numpy gradient, one
draw at a time, as the paper's code does (it differentiates K numerically, which is slower
still). The scipy loop runs on ``--scipy-draws`` draws only and is extrapolated linearly to all
draws; the script says so in its output, and checks that both give the same V on those draws.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import minimize

from detailed_balance.diagnostics import unconstrained_posterior_kernel
from detailed_balance.least_action import minimise_action
from detailed_balance.synthetic import reversible_chain, sample_counts


def scipy_fit(t: np.ndarray, src: np.ndarray, tgt: np.ndarray, n: int, K: str) -> np.ndarray:
    """One L-BFGS-B fit of the action for one draw of T (mean-zero V)."""
    scale = n / t.sum()

    def f(v):
        x = v[src] - v[tgt]
        if K == "exp":
            k = np.exp(-x / 2)
            dk = -0.5 * k
        else:
            k, dk = np.logaddexp(0, -x), -1 / (1 + np.exp(x))
        grad = np.bincount(src, t * dk, n) - np.bincount(tgt, t * dk, n)
        return scale * (t * k).sum() / n, scale * grad / n

    opts = {"maxiter": 20_000, "gtol": 1e-10, "ftol": 1e-14, "maxcor": 30}
    res = minimize(f, np.zeros(n), jac=True, method="L-BFGS-B", options=opts)
    return res.x - res.x.mean()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=300)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--scipy-draws", type=int, default=20)
    ap.add_argument("--kernel", default="exp", choices=("exp", "softplus"))
    args = ap.parse_args()

    chain = reversible_chain(args.states, width=1.0, seed=0)
    counts = sample_counts(chain, attempts_per_source=200, seed=0)
    kernel = unconstrained_posterior_kernel(counts, args.draws, seed=0)
    n, arcs = kernel.n_states, len(kernel.source)
    print(f"chain: {n} states, {arcs} arcs (both directions of {arcs // 2} edges)")
    print(f"posterior draws of T: {args.draws}; kernel K = {args.kernel}")

    t0 = time.perf_counter()
    res = minimise_action(kernel, args.kernel)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = minimise_action(kernel, args.kernel)
    warm = time.perf_counter() - t0
    print(
        f"jax (vmapped, jitted): {first:.2f} s first call (with compilation), "
        f"{warm:.2f} s warm; converged in {int(res.converged.sum())}/{args.draws} draws, "
        f"max Newton iterations {int(res.iterations.max())}"
    )

    m = min(args.scipy_draws, args.draws)
    t = np.exp(kernel.log_prob[:m])
    t0 = time.perf_counter()
    v_scipy = np.stack(
        [scipy_fit(t[d], kernel.source, kernel.target, n, args.kernel) for d in range(m)]
    )
    loop = time.perf_counter() - t0
    per = loop / m
    full = per * args.draws
    gap = np.abs(v_scipy - (res.V[:m] - res.V[:m].mean(axis=1, keepdims=True))).max()
    print(
        f"scipy L-BFGS-B loop: timed on {m} draws ({loop:.2f} s, {per * 1e3:.0f} ms per draw), "
        f"EXTRAPOLATED to {args.draws} draws: {full:.1f} s"
    )
    print(f"max |V_jax - V_scipy| on those {m} draws: {gap:.1e}")
    print(f"speed-up: {full / warm:.0f}x warm, {full / first:.0f}x including compilation")


if __name__ == "__main__":
    main()

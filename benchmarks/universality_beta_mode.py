"""The calibration's one missed control (independent seed 8): is beta_3 -> 0 a mode or a trap?

In ``calibration_universality.py``'s independent replicate with seed 8, the pooled fit put the
third dataset's scale beta_3 at 0.003-0.014 and tau near 0, so one landscape was not rejected.
This runs the same pooled model on the same data twice, per chain:

* from NumPyro's default initialisation (as the calibration did, same seed);
* started in the other basin: beta_3 = 1, tau = 1.5 (every other site as NumPyro initialises it);

and prints, per chain, beta_3 and tau (medians), each dataset's log-likelihood and the log joint
density (means over the draws; the same model, so they compare across chains). A chain sitting at
beta_3 -> 0 with a lower log density than the other basin's is a sampler trap, not the posterior.

    nice -n 10 python benchmarks/universality_beta_mode.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=8)
    p.add_argument("--draws", type=int, default=300)
    p.add_argument("--warmup", type=int, default=300)
    args = p.parse_args()

    import jax
    from numpyro.infer import MCMC, NUTS, init_to_value
    from numpyro.infer.util import log_likelihood

    from detailed_balance.universality import _model_fn, build_joint_data, synthetic_joint

    counts, truth = synthetic_joint(
        n_states=12,
        betas=(1.0, 1.0, 1.0),
        width=1.5,
        attempts_per_source=300,
        independent=(2,),
        seed=args.seed,
    )
    phi, own = truth["phi"], truth["phi_k"][2]
    print(
        f"seed {args.seed}: corr(shared field, dataset 3's own field) = "
        f"{np.corrcoef(phi, own)[0, 1]:+.2f}; sd {np.std(phi):.2f}, {np.std(own):.2f}"
    )
    joint = build_joint_data(counts)
    fn = _model_fn("pooled")

    def model():
        return fn(joint=joint)

    starts = {
        "default init": None,
        "beta_3 = 1, tau = 1.5": init_to_value(values={"log_beta": np.zeros(2), "tau": 1.5}),
    }
    for name, init in starts.items():
        kernel = NUTS(model, target_accept_prob=0.9, **({"init_strategy": init} if init else {}))
        mcmc = MCMC(
            kernel,
            num_warmup=args.warmup,
            num_samples=args.draws,
            num_chains=2,
            chain_method="sequential",
            progress_bar=False,
        )
        t = time.perf_counter()
        mcmc.run(jax.random.PRNGKey(args.seed), extra_fields=("potential_energy", "diverging"))
        sec = time.perf_counter() - t
        s = mcmc.get_samples(group_by_chain=True)
        pe = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["potential_energy"])
        div = np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"])
        flat = {k: np.asarray(v).reshape((-1,) + np.shape(v)[2:]) for k, v in s.items()}
        ll = log_likelihood(model, flat)
        print(f"{name} ({sec:.0f} s):")
        for c in range(2):
            sl = slice(c * args.draws, (c + 1) * args.draws)
            lls = [
                float(np.mean(np.sum(np.asarray(ll[f"d{k}_y"])[sl].reshape(args.draws, -1), -1)))
                for k in range(3)
            ]
            beta3 = np.exp(np.asarray(s["log_beta"])[c, :, 1])
            print(
                f"  chain {c}: beta_3 {np.median(beta3):.3f} "
                f"[{np.quantile(beta3, 0.03):.3f}, {np.quantile(beta3, 0.97):.3f}], "
                f"tau {np.median(np.asarray(s['tau'])[c]):.3f}, log-lik per dataset "
                f"{', '.join(f'{x:.1f}' for x in lls)}, log density (-potential) "
                f"{-np.mean(pe[c]):.1f}, divergences {int(div[c].sum())}"
            )


if __name__ == "__main__":
    main()

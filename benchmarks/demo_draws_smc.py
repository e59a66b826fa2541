"""The demo's log BF(non-reversible : reversible) as the difference of two draws-smc log Z's:
an independent check of nested SMC's estimate (the two share only the NUTS draws).

Per model, ``smc_evidence(model, kwargs, reference=latent_draws(fit))`` (tempered SMC from a
Gaussian of that fit's draws: ``draws-smc``) on the demo's stored fits; prints each log Z ± se,
its note and seconds, then log Z_nr − log Z_rev ± se (the two errors combined in quadrature).

    python benchmarks/demo_draws_smc.py --fits /tmp/db-demo/fits --json demo_draws_smc.json
"""

from __future__ import annotations

import argparse
import json
import math
import time

from detailed_balance.models import MODELS

from detailed_balance import inference  # first: configures JAX before it initialises
from detailed_balance.comparison import fit_model_data, fit_prior, smc_evidence

NAMES = ("reversible", "nonreversible")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fits", required=True, help="folder of reversible.nc, nonreversible.nc")
    parser.add_argument("--particles", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ess", type=float, default=0.9)
    parser.add_argument("--move", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    from bench_fit import machine

    print(machine(), flush=True)
    rows = []
    for name in NAMES:
        fit = inference.load_fit(f"{args.fits}/{name}.nc")
        kwargs = {"data": fit_model_data(fit), "prior": fit_prior(fit)}
        start = time.perf_counter()
        ev = smc_evidence(MODELS[name], kwargs, reference=inference.latent_draws(fit),
                          particles=args.particles, runs=args.runs, ess=args.ess,
                          move=args.move, seed=args.seed)  # fmt: skip
        settings = ("particles", "runs", "ess", "move", "seed")
        row = {"model": name, "log_z": ev.log_z, "se": ev.se, "converged": ev.converged,
               "seconds": round(time.perf_counter() - start, 1), "note": ev.note,
               **{k: getattr(args, k) for k in settings}}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    rev, nr = rows
    if rev["converged"] and nr["converged"]:
        print(f"log Z_nr - log Z_rev = {nr['log_z'] - rev['log_z']:.2f} ± "
              f"{math.hypot(nr['se'], rev['se']):.2f} (draws-smc)", flush=True)  # fmt: skip
    else:
        print("no log BF: " + "; ".join(f"{r['model']}: {r['note']}" for r in rows
                                        if not r["converged"]), flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

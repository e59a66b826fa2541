"""Size of a saved fit: what each group and variable takes in memory, and the netCDF file.

A synthetic reversible chain (``synthetic.reversible_chain(n, degree=6, seed=0)``, 200 attempts
per source), each model of the ladder fitted by SVI (cheap: the stored draws have the same
shapes as a NUTS fit with the same total draws), saved with ``save_fit``. Printed per model: the
variables over 0.1 MB (dims, dtype, MB), the total in memory and the file size. ``--derived``
stores every deterministic site too (``fit(..., derived=True)``).

Usage::

    python benchmarks/fit_size.py                    # 150 states, 4,000 draws
    python benchmarks/fit_size.py --states 1000 --draws 2000 --derived
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--states", type=int, default=150)
    ap.add_argument("--draws", type=int, default=4000, help="total draws (chains x draws)")
    ap.add_argument("--derived", action="store_true", help="store every deterministic site")
    args = ap.parse_args()

    from detailed_balance.models import LADDER

    import detailed_balance as db
    from detailed_balance import _arviz  # the container itself is what is measured here
    from detailed_balance.synthetic import reversible_chain, sample_counts

    chain = reversible_chain(args.states, degree=6, seed=0)
    counts = sample_counts(chain, attempts_per_source=200, seed=0)
    folder = Path(tempfile.mkdtemp())
    for model in LADDER:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 200 SVI steps: "loss still falling" is expected
            idata = db.fit(counts, model, method="svi", draws=args.draws, svi_steps=200,
                           derived=args.derived)  # fmt: skip
        total, cells = 0, 0
        print(f"{model}:")
        for group in ("posterior", "log_likelihood", "sample_stats", "constant_data"):
            for name, var in _arviz.group(idata, group).data_vars.items():
                total += var.nbytes
                cells = var.sizes.get("cell", cells)
                if var.nbytes > 1e5:
                    print(f"  {group}/{name} {var.dims} {var.dtype} {var.nbytes / 1e6:.1f} MB")
        path = db.save_fit(idata, folder / f"{model}.nc")
        print(
            f"  {counts.n_states} states, {len(counts.support_edges()[0])} edges, {cells} cells, "
            f"{args.draws} draws: {total / 1e6:.1f} MB in memory, "
            f"file {path.stat().st_size / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()

"""CLI: ``detailed-balance summary FIT.nc [--json]``."""

from __future__ import annotations

from ._checks import input_file


def configure(parser) -> None:
    parser.add_argument(
        "fit", metavar="FIT.nc", type=input_file, help="a fit written by `detailed-balance fit`"
    )
    parser.add_argument("--json", action="store_true", help="print the full summary as JSON")


def run(args) -> int:
    from ..formats import to_json
    from ..inference import load_fit, summarise

    idata = load_fit(args.fit)
    s = summarise(idata)
    if args.json:
        print(to_json(s, indent=2))
        return 0
    d = s["diagnostics"]
    print(
        f"model {s['model']}, method {s['method']}, {s['chains']} chain(s) x {s['draws']} draw(s)"
    )
    print(f"gauge: {s['gauge']}")
    if d.get("max_rhat") is not None:
        print(
            f"max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess']:.0f}, "
            f"divergences {d['divergences']}"
        )
    for w in d.get("warnings", []):
        print(f"warning: {w}")
    if "V" in s["states"][0]:
        pct = round(100 * s["hdi_prob"])
        print(f"\n{'state':<20} {'V mean':>8} {'sd':>6} {f'{pct}% HDI':>17}  identified")
        for st in s["states"]:
            v = st["V"]
            print(
                f"{st['state'][:20]:<20} {v['mean']:8.3f} {v['sd']:6.3f} "
                f"[{v['hdi_lower']:7.3f}, {v['hdi_upper']:7.3f}]  "
                f"{'yes' if st['identified'] else 'NO'}"
            )
    for c in s.get("cycles", [])[:20]:
        print(f"cycle {c['cycle']}: affinity {c['mean']:.3f} ± {c['sd']:.3f}")
    return 0

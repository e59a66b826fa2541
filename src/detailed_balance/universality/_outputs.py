"""The result on disk: JSON, Markdown and the figures (fields, beta against 1/T)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._arviz import HDI_PROB
from ._summaries import _flat

if TYPE_CHECKING:
    from ._compare import UniversalityResult


def plot_fields(result: UniversalityResult):
    """Each dataset's field (separate fit) against the shared field, with 94% HDIs.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .._arviz import hdi

    sep, sh = result.fits["separate"], result.fits["shared"]
    k_n = len(sep.joint.datasets)
    fig, axes = plt.subplots(1, k_n, figsize=(3.0 * k_n, 3.0), squeeze=False)
    phi = _flat(sh.posterior["phi"])
    beta = _flat(sh.posterior["beta"]).mean(0)
    for k, ax in enumerate(axes[0]):
        idx, ident = sep.joint.index[k], sep.joint.identified[k]
        x = phi[:, idx][:, ident]
        y = _flat(sep.posterior[f"d{k}_phi"])[:, ident]
        y = y - y.mean(1, keepdims=True) + (x.mean(1, keepdims=True) * beta[k])
        xl, xh = hdi(x, HDI_PROB)
        yl, yh = hdi(y, HDI_PROB)
        xm, ym = x.mean(0), y.mean(0)
        ax.errorbar(
            xm,
            ym,
            xerr=[xm - xl, xh - xm],
            yerr=[ym - yl, yh - ym],
            fmt="o",
            ms=2,
            lw=0.5,
            alpha=0.6,
        )
        grid = np.linspace(xm.min(), xm.max(), 2)
        ax.plot(grid, beta[k] * grid, "k--", lw=1, label=f"β = {beta[k]:.2f}")
        ax.set_title(sep.labels[k].replace(" (", "\n("), fontsize=7)
        ax.set_xlabel("shared field φ")
        if k == 0:
            ax.set_ylabel("own field φ_k (separate fit)")
        ax.legend(fontsize=7, loc="upper left")  # "best" searches the data: slow, warns
    fig.tight_layout()
    return fig


def plot_beta(result: UniversalityResult):
    """β_k (shared model, 94% HDI) against 1/T_k, with the line β ∝ 1/T through the reference.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    rows = result.beta["shared"]
    t = [np.nan if v is None else float(v) for v in result.temperatures]
    fig, ax = plt.subplots(figsize=(3.4, 3.0))
    for r, tk in zip(rows, t, strict=True):
        if np.isfinite(tk):
            ax.errorbar(
                1 / tk,
                r["mean"],
                yerr=[[r["mean"] - r["hdi_low"]], [r["hdi_high"] - r["mean"]]],
                fmt="o",
            )
            ax.annotate(
                r["dataset"],
                (1 / tk, r["mean"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    if np.isfinite(t[0]):
        grid = np.linspace(0, np.nanmax(1 / np.array(t)) * 1.1, 2)
        ax.plot(grid, grid * t[0], "k--", lw=1, label="β = T₁/T")
        ax.legend(fontsize=7, loc="upper left")  # "best" searches the data: slow, warns
    ax.set_xlabel("1 / T")
    ax.set_ylabel("β (shared model)")
    fig.tight_layout()
    return fig


def write_outputs(result: UniversalityResult, out_dir) -> dict:
    """Write universality.json, universality.md and the figures (PNG and PDF) into ``out_dir``.

    Parameters
    ----------
    result : UniversalityResult
        The result of the universality analysis.
    out_dir : str or Path
        Output directory.

    Returns
    -------
    dict
        Path (as str) of each file written, by kind.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "universality.json", "markdown": out / "universality.md"}
    files["json"].write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    md = result.to_markdown()
    figs = {"fields": plot_fields(result)}
    if any(t is not None for t in result.temperatures):
        figs["beta_vs_inverse_temperature"] = plot_beta(result)
    for name, fig in figs.items():
        for ext in ("png", "pdf"):
            fig.savefig(out / f"{name}.{ext}", dpi=150)
        plt.close(fig)
        files[name] = out / f"{name}.png"
        md += f"\n![{name}]({name}.png)\n"
    files["markdown"].write_text(md)
    return {k: str(v) for k, v in files.items()}

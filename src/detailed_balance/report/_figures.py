"""The report's figures: one column of a paper each, PNG and PDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._arviz import HDI_LABEL, HDI_PROB
from ..formats import atomic_output
from ._analysis import Analysis

COLUMN_WIDTH = 3.4  # inches: one column of a two-column paper


def _figure(height: float = 2.6, width: float = COLUMN_WIDTH):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


def _style():
    import matplotlib

    return matplotlib.rc_context(
        {
            "font.size": 8,
            "axes.titlesize": 8,
            "axes.labelsize": 8,
            "legend.fontsize": 7,
            "xtick.labelsize": 7,
            "ytick.labelsize": 7,
            "lines.markersize": 3,
            "errorbar.capsize": 0,
            "axes.spines.top": False,
            "axes.spines.right": False,
            # labels are data (state names from an LLM): "$x$" must print, not parse as math
            "text.parse_math": False,
            "text.usetex": False,
        }
    )


def plot_landscape(a: Analysis, max_labels: int = 60):
    """Posterior V_LA per state with its 94% HDI, states sorted by potential.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.
    max_labels : int
        Name every state on the x axis when there are at most this many; beyond, every k-th
        (the figure widens up to two columns; all names are in the potentials table).

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from .. import _arviz

    v = a.posterior.V
    ok = np.isfinite(v).all(axis=0)
    idx = np.flatnonzero(ok)
    fig, ax = _figure(3.0, width=float(np.clip(0.1 * min(len(idx), 70), COLUMN_WIDTH, 7.0)))
    mean = v[:, idx].mean(0)
    lo, hi = _arviz.hdi(v[:, idx], HDI_PROB)
    order = np.argsort(-mean)
    x = np.arange(len(idx))
    ax.errorbar(
        x,
        mean[order],
        yerr=[mean[order] - lo[order], hi[order] - mean[order]],
        fmt="o",
        color="C0",
        ecolor="C0",
        mfc="none",  # a ring, so the model's V (a cross, equal under reversibility) shows inside
        markersize=4.5,
        elinewidth=0.8,
        zorder=3,
        label=f"V_LA, mean and {HDI_LABEL}",
    )
    if a.model_V is not None:
        ax.plot(
            x,
            a.model_V[:, idx].mean(0)[order],
            "x",
            color="C3",
            zorder=4,
            markersize=2.5,
            label=f"V ({a.model} model), mean",
        )
    if a.point is not None:
        pv = a.point.V[idx][order]
        fin = np.isfinite(pv)
        ax.plot(
            x[fin],
            pv[fin] - np.mean(pv[fin]) + np.mean(mean[order][fin]),
            "_",
            color="k",
            markersize=6,
            label="V_LA on raw counts",
        )
    every = int(np.ceil(len(idx) / max_labels)) if len(idx) else 1
    names = [_short_label(a.counts.states[i]) for i in idx[order]]
    ax.set_xticks(
        x[::every], names[::every], rotation=90, parse_math=False,
        fontsize=7 if len(idx) <= 30 else 5,
    )  # fmt: skip
    if every == 1:
        ax.set_xlabel(f"state (sorted by potential; {len(idx)} states)")
    else:
        ax.set_xlabel(f"state (sorted by potential; one in {every} of {len(idx)} named)")
    ax.set_ylabel("potential V (nats, β = 1)")
    ax.set_title(f"Potential landscape (least action, K = {a.K})")
    ax.legend(frameon=False, loc="upper right")
    return fig


def _chi2_result(chi2_ndf, ndf: int, what: str = "df") -> str:
    """A χ² result as text ("χ²/ndf = 1.23 (4 df)"); "nothing to test" when there is no degree
    of freedom (never "nan" as a result)."""
    if not ndf or not np.isfinite(chi2_ndf):
        return f"nothing to test (0 {what})" if not ndf else f"χ² undefined ({ndf} {what})"
    return f"χ²/ndf = {chi2_ndf:.2f} ({ndf} {what})"


def _pairwise_result(p) -> str:
    """Pearson r and χ²/ndf of the pairwise test, without "nan" when there is nothing to test."""
    if not p.ndf and not len(p.f):
        return "nothing to test (no pair seen ≥ 2 times each way)"
    r = f"r = {p.pearson_r:.2f}, " if np.isfinite(p.pearson_r) else ""
    return r + _chi2_result(p.chi2_ndf, p.ndf)


def _short_label(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def plot_pairwise(a: Analysis):
    """Log forward/backward ratio against ΔV on pairs seen both ways (the paper's pairwise plot).

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    p = a.pairwise
    fig, ax = _figure()
    if len(p.f) == 0:
        ax.text(0.5, 0.5, "no pair seen ≥ 2 times each way", ha="center", transform=ax.transAxes)
    ax.errorbar(
        p.dv, p.y, xerr=p.dv_err, yerr=p.y_err, fmt="o", color="C0", elinewidth=0.6, alpha=0.8
    )
    lim = np.nanmax(np.abs(np.r_[p.dv, p.y, 1.0])) * 1.1
    ax.plot([-lim, lim], [-lim, lim], "--", color="0.4", lw=0.8, label="detailed balance")
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xlabel("ΔV = V(f) − V(g) from least action (nats)")
    ax.set_ylabel("log T(g←f) / T(f←g) (nats)")
    ax.set_title(f"Pairwise test: {_pairwise_result(p)}")
    ax.legend(frameon=False, loc="upper left")
    return fig


def plot_loops(a: Analysis):
    """Forward vs backward log products around 3-cycles seen in all six directions.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    t = a.triangles
    fig, ax = _figure()
    if t.ndf == 0:
        ax.text(
            0.5,
            0.5,
            "no 3-cycle with all six directions observed",
            ha="center",
            transform=ax.transAxes,
        )
        ax.set_xlim(-1, 0)
        ax.set_ylim(-1, 0)
    else:
        ax.errorbar(t.backward, t.forward, yerr=t.error, fmt="o", color="C2", elinewidth=0.6)
        lo = min(t.forward.min(), t.backward.min()) - 0.5
        hi = max(t.forward.max(), t.backward.max()) + 0.5
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=0.8, label="Kolmogorov: equal")
        ax.legend(frameon=False, loc="upper left")
    ax.set_xlabel("backward Σ log T around the cycle (nats)")
    ax.set_ylabel("forward Σ log T (nats)")
    ax.set_title(f"3-cycle loop test: {_chi2_result(t.chi2_ndf, t.ndf, 'cycles')}")
    return fig


def plot_cycle_affinities(a: Analysis, max_cycles: int = 60):
    """Affinity (log forward/backward product) of each independent cycle with its error bar.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.
    max_cycles : int
        Show at most this many cycles (those with the largest abs(affinity) / sd).

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from .. import _arviz

    fig, ax = _figure()
    if a.cycle_affinity is not None and a.cycle_affinity.shape[1]:
        d = a.cycle_affinity
        mean = d.mean(0)
        lo, hi = _arviz.hdi(d, HDI_PROB)
        err = [mean - lo, hi - mean]
        what = f"{a.model} model, {HDI_LABEL}"
        z = np.abs(mean) / np.maximum(d.std(0), 1e-12)
    else:
        b = a.basis
        mean, err, z = b.affinity, b.error, np.abs(b.affinity) / np.maximum(b.error, 1e-12)
        what = "cycle basis of two-way pairs, ±1 sd"
    n = len(mean)
    if n == 0:
        ax.text(
            0.5, 0.5, "no cycle: the two-way graph is a tree", ha="center", transform=ax.transAxes
        )
        ax.set_xlabel("cycle")
    else:
        keep = np.sort(np.argsort(-z)[:max_cycles])
        e = np.asarray(err)[..., keep]
        ax.errorbar(np.arange(len(keep)), mean[keep], yerr=e, fmt="o", color="C1", elinewidth=0.8)
        ax.axhline(0, color="0.4", ls="--", lw=0.8)
        more = f"; the {len(keep)} largest |z| of {n}" if n > len(keep) else ""
        ax.set_xlabel(f"independent cycle{more}")
    ax.set_ylabel("cycle affinity (nats)")
    ax.set_title(f"Cycle affinities: {what}", fontsize=7)
    return fig


def plot_potential_histogram(a: Analysis):
    """Histogram of V_LA (posterior means) across states with the Gaussian of the same width.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    fig, ax = _figure()
    v = a.posterior.V[:, a.posterior.reference]
    v = v[:, np.isfinite(v).all(axis=0)].mean(0)
    ax.hist(
        v, bins=max(5, min(40, len(v) // 3)), density=True, color="C0", alpha=0.6, label="states"
    )
    # the same σ as the text and the tables (diagnostics.gaussian_width: the posterior mean of
    # the per-draw width), not the spread of the posterior means, which is smaller
    w = a.width
    mu, sigma = v.mean(), w["sigma"]
    if np.isfinite(sigma) and sigma > 0:  # one state has no width
        x = np.linspace(v.min() - sigma, v.max() + sigma, 200)
        ax.plot(
            x,
            np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
            color="C3",
            label=f"Gaussian, σ = {sigma:.2f}\n(posterior mean width)",
        )
    s_min = w.get("S_min", np.nan)
    s_text = f"S_min = {s_min:.3f} vs " if np.isfinite(s_min) else ""
    ax.set_title(f"{s_text}K(0)/(√π σ) = {w['S_predicted']:.3f}")
    ax.set_xlabel("potential V_LA (nats, posterior mean per state)")
    ax.set_ylabel("density (1/nat)")
    # a fixed corner: "best" searches the data, and matplotlib warns (an error under the test
    # suite's filters) when that search takes over a second, as it can on a loaded machine
    ax.legend(frameon=False, loc="upper right", fontsize="small")
    return fig


def plot_least_action_posterior(a: Analysis):
    """Posterior of the minimum action S_min, with the raw-count point estimate.

    Parameters
    ----------
    a : Analysis
        From :func:`analyse`.

    Returns
    -------
    matplotlib.figure.Figure
        Sized for one column of a paper; not registered with pyplot (save it with
        ``fig.savefig``).
    """
    from .. import _arviz

    fig, ax = _figure()
    s = np.atleast_1d(a.posterior.S_min)
    ax.hist(s, bins=30, density=True, color="C4", alpha=0.6, label=f"posterior ({len(s)} draws)")
    if s.size > 1:
        lo, hi = _arviz.hdi(s, HDI_PROB)
        ax.axvspan(lo, hi, color="C4", alpha=0.15, label=HDI_LABEL)
    ax.axvline(float(a.point.S_min), color="k", lw=1, label="raw counts")
    ax.set_xlabel(f"minimum action S_min (dimensionless, K = {a.K})")
    ax.set_ylabel("posterior density")
    ax.set_title("Least-action posterior")
    ax.legend(frameon=False, loc="upper right")  # fixed: see plot_potential_histogram
    return fig


FIGURES = {
    "potential_landscape": (
        plot_landscape,
        "Potential landscape: least-action V per state with its {hdi}.",
    ),
    "pairwise": (
        plot_pairwise,
        "Forward vs backward: log T(g←f)/T(f←g) against ΔV, pairs seen ≥ 2 times each way; "
        "error bars 1 sd.",
    ),
    "loops": (
        plot_loops,
        "3-cycle loop test (Kolmogorov's criterion): forward vs backward log products; "
        "error bars 1 sd (Poisson).",
    ),
    "cycle_affinities": (
        plot_cycle_affinities,
        "Affinity of each independent cycle; zero under detailed balance.",
    ),
    "potential_histogram": (
        plot_potential_histogram,
        "Distribution of the potential across states, with the Gaussian of the same mean and "
        "width.",
    ),
    "least_action_posterior": (
        plot_least_action_posterior,
        "Posterior of the minimum action S_min; the line marks the fit to the raw counts. A "
        "posterior puts some probability on arcs never observed (e.g. the reverse of one-way "
        "pairs), which the raw-count kernel sets to zero, so it can sit above the raw value.",
    ),
}


def save_figure(fig, directory: Path, name: str) -> list[Path]:
    """Write ``name.png`` (200 dpi) and ``name.pdf``.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    directory : Path
        Output directory.
    name : str
        File name without extension.

    Returns
    -------
    list of Path
        The files written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png", directory / f"{name}.pdf"]
    for path in paths:
        with atomic_output(path) as tmp:
            fig.savefig(tmp, dpi=200, format=path.suffix[1:])
    return paths

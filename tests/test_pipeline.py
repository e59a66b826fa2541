"""The pipeline is a straight line: fit once, compare the stored fits, report from artefacts.

The sampler is replaced by one that raises (or counts) to show which stage runs it.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from detailed_balance import _arviz, inference
from detailed_balance.comparison import compare, log_evidence_dirichlet, read_comparison
from detailed_balance.errors import FitError
from detailed_balance.inference import fit_ladder
from detailed_balance.synthetic import driven_chain, reversible_chain, sample_counts

NUTS = {"draws": 200, "warmup": 200, "chains": 1, "seed": 0, "progress": False}


@pytest.fixture(scope="module")
def fit_files(tmp_path_factory):
    """One NUTS fit per model of a small driven chain, written and read back as netCDF."""
    counts = sample_counts(driven_chain(4, affinity=2.0, seed=0), attempts_per_source=150, seed=0)
    folder = tmp_path_factory.mktemp("fits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = fit_ladder(counts, **NUTS)
    for name, idata in fits.items():
        _arviz.to_netcdf(idata, folder / f"{name}.nc")
    return counts, folder


def no_sampler(monkeypatch):
    """Any fit (NUTS, MAP, SVI) from here on raises."""
    import numpyro.infer

    def refuse(*args, **kwargs):
        raise AssertionError("a sampler ran")

    monkeypatch.setattr(inference, "fit", refuse)
    monkeypatch.setattr(numpyro.infer.MCMC, "run", refuse)


def load(folder) -> dict:
    return {p.stem: _arviz.from_netcdf(p) for p in sorted(folder.glob("*.nc"))}


def test_compare_of_stored_fits_runs_no_sampler(fit_files, monkeypatch):
    counts, folder = fit_files
    no_sampler(monkeypatch)
    result = compare(load(folder), g2_samples=0, seed=0)
    t = result.table.set_index("model")
    assert list(t.index) == ["unconstrained", "reversible", "nonreversible"]
    # the unconstrained evidence is rebuilt from the stored counts: exactly the closed form
    assert t.loc["unconstrained", "log_z"] == pytest.approx(log_evidence_dirichlet(counts))
    # a driven 4-cycle (affinity 2, 150 attempts per state): the reversible model loses
    assert t.loc["nonreversible", "log_bf_vs_reversible"] > 2 * t.loc["nonreversible", "log_bf_se"]
    assert result.lrt["p_value"] < 0.01
    assert len(result.sensitivity) == 1  # no other priors given: the main row only
    # a list of fits is the same as a mapping (the model is read from each fit)
    again = compare(list(load(folder).values()), g2_samples=0, seed=0)
    assert np.allclose(again.table["elpd_loo"], result.table["elpd_loo"])


def test_compare_refuses_fits_that_do_not_belong_together(fit_files, monkeypatch):
    counts, folder = fit_files
    fits = load(folder)
    with pytest.raises(FitError, match="reversible"):
        compare({"u": fits["unconstrained"]})
    with pytest.raises(FitError, match="one fit per model"):
        compare([fits["reversible"], fits["reversible"]])
    other = sample_counts(reversible_chain(4, seed=1), attempts_per_source=50, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alien = inference.fit(other, "nonreversible", method="map", progress=False)
        point = inference.fit(counts, "nonreversible", method="map", progress=False)
    no_sampler(monkeypatch)
    with pytest.raises(FitError, match="other counts"):
        compare({"reversible": fits["reversible"], "nonreversible": alien})
    # a MAP fit has no draws for PSIS-LOO: one line, not ArviZ's IndexError
    with pytest.raises(FitError, match="needs posterior draws.*map fit") as err:
        compare({"reversible": fits["reversible"], "nonreversible": point}, nested_smc=True)
    assert "\n" not in str(err.value)


def test_cli_compares_stored_fits_and_report_reads_the_comparison(
    fit_files, monkeypatch, tmp_path, capsys
):
    from detailed_balance.cli import main
    from detailed_balance.report import build_report

    _, folder = fit_files
    no_sampler(monkeypatch)
    files = [str(p) for p in sorted(folder.glob("*.nc"))]
    assert main(["compare", *files, "--g2-samples", "0", "--out", str(tmp_path / "cmp")]) == 0
    payload = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    assert payload["fits"] == files and len(payload["models"]) == 3
    back = read_comparison(tmp_path / "cmp")
    assert back.table["log_z"].tolist() == pytest.approx([m["log_z"] for m in payload["models"]])
    assert back.to_markdown() == (tmp_path / "cmp" / "comparison.md").read_text()

    fit = folder / "reversible.nc"
    index = build_report(fit, tmp_path / "r", draws=64, progress=False,
                         comparison=tmp_path / "cmp" / "comparison.json")  # fmt: skip
    text = index.read_text()
    assert "log BF" in text and "No Bayesian verdict" not in text
    assert (tmp_path / "r" / "tables" / "comparison.tex").exists()
    # without a comparison the report of a fit says so, and still runs no sampler
    text = build_report(fit, tmp_path / "r2", draws=64, progress=False).read_text()
    assert "no comparison was given" in text
    capsys.readouterr()


def test_cli_nested_smc_settings_reach_compare(fit_files, monkeypatch, capsys):
    from detailed_balance.cli import main

    _, folder = fit_files
    files = [str(p) for p in sorted(folder.glob("*.nc"))]
    seen = []

    def record(fits, **kwargs):
        seen.append(kwargs["nested_smc"])
        raise SystemExit(0)  # the wiring is what is tested, not the estimator

    monkeypatch.setattr("detailed_balance.comparison.compare", record)
    for extra, expected in [
        ([], False),
        (["--nested-smc"], True),
        (["--nested-smc-particles", "64"], {"particles": 64}),  # a setting implies the flag
        (["--nested-smc", "--nested-smc-particles", "64", "--nested-smc-runs", "3"],
         {"particles": 64, "runs": 3}),
    ]:  # fmt: skip
        with pytest.raises(SystemExit):
            main(["compare", *files, *extra])
        assert seen.pop() == expected, extra
    assert main(["compare", *files, "--nested-smc-runs", "1"]) == 2  # one run has no error
    assert "--nested-smc-runs: must be ≥ 2" in capsys.readouterr().err


@pytest.mark.slow
def test_evidence_fallback_draws_smc_where_bridge_sampling_is_not_run(fit_files, monkeypatch):
    """Where bridge sampling is not run (too few draws per parameter), compare's
    ``evidence_fallback="draws-smc"`` gives both hierarchical models a log Z from their own
    draws, equal within 3 combined se to bridge sampling's on the same draws (45 s)."""
    _, folder = fit_files
    no_sampler(monkeypatch)
    bridge = compare(load(folder), g2_samples=0, seed=0).table.set_index("model")
    monkeypatch.setattr("detailed_balance.comparison._compare.MIN_DRAWS_PER_PARAMETER", 10**6)
    res = compare(load(folder), g2_samples=0, seed=0, evidence_fallback="draws-smc")
    smc = res.table.set_index("model")
    for name in ("reversible", "nonreversible"):
        assert bridge.loc[name, "evidence_method"] == "bridge", name
        assert smc.loc[name, "evidence_method"] == "draws-smc", name
        se = np.hypot(bridge.loc[name, "log_z_se"], smc.loc[name, "log_z_se"])
        assert abs(smc.loc[name, "log_z"] - bridge.loc[name, "log_z"]) < 3 * se, name
    assert any(n.startswith("reversible: evidence by draws-smc") for n in res.notes)


def test_evidence_fallback_is_checked_first_and_the_command_line_offers_the_same(fit_files):
    from detailed_balance import comparison
    from detailed_balance.cli import build_parser

    _, folder = fit_files
    with pytest.raises(ValueError, match="evidence_fallback='bridge': use one of draws-smc"):
        compare(load(folder), evidence_fallback="bridge")
    # the command line offers exactly these (its parser does not import the estimators)
    sub = build_parser()._subparsers._group_actions[0].choices["compare"]
    choices = next(a.choices for a in sub._actions if a.dest == "evidence_fallback")
    assert tuple(choices) == comparison.EVIDENCE_FALLBACKS


@pytest.mark.slow
def test_compare_shortcut_on_counts_is_fit_ladder_then_compare(fit_files):
    counts, folder = fit_files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        short = compare(counts, sensitivity_scales=(), g2_samples=0, **NUTS)
    stored = compare(load(folder), g2_samples=0, seed=0)
    for col in ("log_z", "elpd_loo", "log_bf_vs_reversible", "pareto_k_max"):
        assert np.allclose(short.table[col], stored.table[col], equal_nan=True), col


@pytest.mark.slow
def test_fit_all_then_compare_on_the_command_line(tmp_path, capsys):
    from detailed_balance.cli import main
    from detailed_balance.formats import write_counts

    counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=80, seed=0)
    write_counts(counts, tmp_path / "c.csv")
    args = ["fit", str(tmp_path / "c.csv"), "--model", "all", "--out", str(tmp_path / "fits"),
            "--draws", "150", "--warmup", "150", "--chains", "1", "--quiet"]  # fmt: skip
    assert main(args) == 0
    files = sorted(str(p) for p in (tmp_path / "fits").glob("*.nc"))
    assert [p.rsplit("/", 1)[1] for p in files] == [
        "nonreversible.nc", "reversible.nc", "unconstrained.nc"
    ]
    capsys.readouterr()
    assert main(["compare", *files, "--g2-samples", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["models"]) == 3


@pytest.mark.slow
def test_the_demo_fits_each_model_once(tmp_path, monkeypatch):
    from detailed_balance import demo

    real_fit, calls = inference.fit, []

    def counting_fit(counts, model="reversible", **kwargs):
        calls.append((model, json.dumps(repr(kwargs.get("prior")))))
        return real_fit(counts, model, **kwargs)

    # fit_ladder calls the fit of its own module: patch it there (patching inference.fit alone
    # counted nothing, and this test had gone stale when the demo dropped its sensitivity refits)
    monkeypatch.setattr("detailed_balance.inference._fit.fit", counting_fit)
    monkeypatch.setattr(inference, "fit", counting_fit)  # and where the other stages import it
    monkeypatch.setattr(demo, "DEMO_DRAWS", 150)
    report = demo.run_demo(tmp_path / "demo", synthetic=True)
    assert len(calls) == len(set(calls)) == len(demo.DEMO_MODELS)  # compare/report refit nothing
    assert "Verdict" in (report / "index.md").read_text()

"""The calibration script's fallback pass (which rows it refits, the call it makes, the summary)
and the paired comparison of a rerun with stored rows."""

import importlib.util
import math
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _calibration():
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "benchmarks/calibration.py")
    cal = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cal)
    return cal


def _row(name, kind):
    return {"draws_file": f"{name}.npz", "kind": kind, "affinity": 0.0 if kind == "reversible"
            else 1.0, "n_states": "30", "attempts": 200, "generator": "package"}  # fmt: skip


def test_refused_rows_and_call():
    cal = _calibration()
    rows = [_row("d1", "driven"), _row("r1", "reversible"), _row("r2", "reversible"),
            _row("r3", "reversible"), _row("d2", "driven")]  # fmt: skip
    sd = [{"draws_file": "d1.npz", "bf_converged": "0"}, {"draws_file": "r1.npz",
          "bf_converged": "1"}, {"draws_file": "r2.npz", "bf_converged": "0"},
          {"draws_file": "d2.npz", "bf_converged": "0"}]  # fmt: skip  (r3: no SD row yet)
    picked = [r["draws_file"] for r in cal.refused_rows(rows, sd)]
    assert picked == ["r2.npz", "d1.npz", "d2.npz"]  # reversible first, then file order
    sd[0]["bf"], sd[3]["bf"] = "nonrev", "undecided"  # d1 called by its tail side, d2 not
    picked = [r["draws_file"] for r in cal.refused_rows(rows, sd)]
    assert picked == ["r2.npz", "d2.npz", "d1.npz"]  # a miss before a row already called
    # the call at log 10: an estimate or a bound past ±log 10 decides, the tail side without one
    just = math.log(10)
    assert [cal.bf_call(x) for x in (just + 0.01, just, -just, -just - 0.01)] == [
        "nonrev", "undecided", "undecided", "rev"]
    assert cal.bf_call(math.nan, 1) == "nonrev" and cal.bf_call(math.nan, -1) == "rev"
    assert cal.bf_call(math.nan, 0) == "undecided"


def test_fallback_table_counts_both_estimators():
    """Size pools Savage–Dickey's own calls with the chain's on the refused rows; power compares
    Savage–Dickey's tail side before with the chain's call now."""
    cal = _calibration()
    rows = [_row("r1", "reversible"), _row("r2", "reversible"), _row("r3", "reversible"),
            _row("d1", "driven"), _row("d2", "driven")]  # fmt: skip
    for r in rows:
        r.update({"log_bf": "", "log_bf_se": "", "bf": ""})
    sd = [{"draws_file": "r1.npz", "bf_converged": "1", "bf": "nonrev", "log_bf": "2.5"},
          {"draws_file": "r2.npz", "bf_converged": "1", "bf": "undecided", "log_bf": "0.1"},
          {"draws_file": "r3.npz", "bf_converged": "0", "bf": "undecided", "log_bf": "nan"},
          {"draws_file": "d1.npz", "bf_converged": "0", "bf": "nonrev", "log_bf": "nan"},
          {"draws_file": "d2.npz", "bf_converged": "0", "bf": "undecided", "log_bf": "nan"}]
    fb = [{"draws_file": "r3.npz", "bf_method": "variational lower bound", "log_bf": "2.4",
           "log_bf_se": "0.1", "call": "nonrev"},
          {"draws_file": "d1.npz", "bf_method": "bridge", "log_bf": "9.0", "log_bf_se": "0.5",
           "call": "nonrev"}]  # fmt: skip  (d2 not run yet)
    text = cal.fallback_table(rows, sd, fb)
    assert "false \"non-reversible\" calls 2/3 = 66.7%" in text  # r1 by SD, r3 by the bound
    assert "over 2 Savage–Dickey calls + 1 of the 1 refused" in text
    assert "1 of 2 run" in text and "before 1/1 = 100%" in text
    assert "| d2 | undecided | not run |" in text
    assert "refits: bridge 1, variational lower bound 1." in text
    assert "Nested SMC" not in text  # rows of a pass before nested SMC have no such columns
    # nested SMC beside them: compared with bridge sampling where it ran, its own calls counted
    fb[0].update({"bf_nested": "1.9", "bf_nested_se": "0.2", "nested_call": "undecided"})
    fb[1].update({"bf_bridge": "9.0", "bf_bridge_se": "0.5", "bf_nested": "10.5",
                  "bf_nested_se": "0.5", "nested_call": "nonrev", "nested_seconds": "12"})
    text = cal.fallback_table(rows, sd, fb)
    assert "| 10.50 ± 0.50 | nonrev | +2.1 | 12 |" in text  # (10.5 - 9) / hypot(0.5, 0.5)
    assert "within 2 combined se of bridge sampling on 0 of the 1" in text
    assert "its call equals compare's on 1 of 2" in text
    assert "reversible ones: 0 of 1" in text


def test_append_row_writes_a_header_once_and_keeps_the_files_column_order(tmp_path):
    """Every pass appends through one function: a new file gets ``fields`` as its header; an
    existing one keeps its own columns (older runs have fewer), whatever ``fields`` says now."""
    import csv

    cal = _calibration()
    out = tmp_path / "rows.csv"
    cal.append_row(out, ["a", "b"], {"a": 1, "b": 2, "extra": 9})
    cal.append_row(out, ["b", "a", "c"], {"a": 3, "b": 4, "c": 5})
    with out.open() as fh:
        assert list(csv.reader(fh)) == [["a", "b"], ["1", "2"], ["3", "4"]]


def _run_row(seed, kind="reversible", **cols):
    """A NUTS row as load_run gives it (strings where the CSV has strings)."""
    row = {"kind": kind, "affinity": 0.0 if kind == "reversible" else 1.0, "attempts": 25,
           "chain_seed": str(seed), "sample_seed": str(seed), "n_states": "40",
           "generator": "package", "draws_file": f"d{seed}.npz", "log_bf": -3.0, "log_bf_se": 0.3,
           "bf_converged": "1", "bf": "rev", "loo": "undecided", "g2_pick": "rev", "g2": "5.0",
           "g2_p": 0.5, "fb_call": "", "nested_call": "", "rev_pointwise_rhat": "1.001",
           "nonrev_pointwise_rhat": "1.004", "rev_pointwise_ess": "900",
           "nonrev_pointwise_ess": "700", "tau_rhat": "1.0", "tau_ess": "500", "divergences": "0",
           "seconds": "40"}  # fmt: skip
    row.update(cols)
    return row


def test_paired_rerun_against_stored_rows():
    """The same datasets (job key) compared: z of the log BF where both gave a number, calls
    changed only where both runs made one, G² identity, and the summary's counts."""
    cal = _calibration()
    old = [_run_row(0), _run_row(1, log_bf=math.nan, log_bf_se=math.nan, bf_converged="0",
                                 bf="undecided", fb_call="undecided"),
           _run_row(2, g2="7.0"), _run_row(3)]  # fmt: skip
    old[2].update(fb_call="nonrev", fb_method="bridge", fb_log_bf=5.0, fb_log_bf_se=0.3)
    new = [_run_row(0, log_bf=-2.0, log_bf_se=0.4, seconds="20",  # z = 1 / 0.5 = +2
                    fb_call="undecided"),  # a fallback call only after: not a change
           _run_row(1, log_bf=2.4, bf="nonrev"),  # refused before: no z; bf call changed
           _run_row(2, fb_call="nonrev", fb_method="bridge", fb_log_bf=5.4,
                    fb_log_bf_se=0.4),  # G² differs; fallback z = 0.4 / 0.5
           _run_row(4)]  # not in the stored rows: left out
    pairs = cal.paired({cal.job_key(r): r for r in new}, {cal.job_key(r): r for r in old})
    assert [p["dataset"] for p in pairs] == ["d0", "d1", "d2"]
    assert pairs[0]["z"] == pytest.approx(2.0) and math.isnan(pairs[1]["z"])
    assert pairs[2]["fb_z"] == pytest.approx(0.8) and math.isnan(pairs[0]["fb_z"])
    assert [p["changed"] for p in pairs] == ["", "bf undecided->nonrev", ""]
    assert [p["g2_same"] for p in pairs] == [1, 1, 0]
    assert pairs[0]["rhat_new"] == 1.004 and pairs[0]["ess_new"] == 700
    text = cal.paired_markdown(pairs)
    assert "on the 2 with a number in both: mean +1.00" in text  # z = +2 and 0
    assert "max |z| 2.00 (d0)" in text and "|z| > 2 on 0" in text
    assert "1 before, 0 after" in text and "G² identical** (statistic and p) on 2 of 3" in text
    assert "1 datasets; d1: bf undecided->nonrev." in text
    assert "nested SMC's log BF on the fallback refits**: no dataset" in text
    assert "| reversible | 40 | package | 3 | +1.00 (1.41; 2.00) | +0.80 (0.80) |" in text
    assert "| 40.0 -> 40.0 |" in text

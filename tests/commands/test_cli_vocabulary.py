"""One vocabulary across subcommands (issue 16): every option has help, a flag means the same
everywhere, old spellings still parse, ``--version`` works, warnings are one stderr line."""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings

import pytest

from detailed_balance.cli import _show_warning, build_parser, main


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


SUB = _subparsers(build_parser())
# collect's --chains/--seed are its trajectory design's, a different meaning (see issue 16)
OWN_MEANING = {"collect"}


def _options(p: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {o: a for a in p._actions for o in a.option_strings}


def test_every_option_and_argument_of_every_command_has_help():
    missing = []
    for name, p in [("detailed-balance", build_parser()), *SUB.items()]:
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction) or a.help == argparse.SUPPRESS:
                continue
            if not (a.help or "").strip():
                missing.append(f"{name} {'/'.join(a.option_strings) or a.dest}")
    assert not missing, missing


# flag -> the words its help must contain wherever it appears (one meaning everywhere)
SHARED = {
    "--quiet": "no progress",
    "--draws": "NUTS",
    "--warmup": "NUTS",
    "--chains": "chains",
    "--seed": "random seed",
    "--prior-scale": "sigma_phi",
    "--edge-scale": "sigma_u",
    "--cycle-scale": "tau",
    "--lengthscale": "GP lengthscale",
    "--target-accept": "NUTS target acceptance",
    "--warmup-tree-depth": "NUTS tree depth during warm-up",
}


@pytest.mark.parametrize("flag", sorted(SHARED))
def test_a_shared_flag_means_the_same_in_every_command(flag):
    helps = {
        name: _options(p)[flag].help
        for name, p in SUB.items()
        if flag in _options(p) and name not in OWN_MEANING
    }
    assert helps, f"no command has {flag}"
    assert len(set(helps.values())) == 1, helps  # one definition, so one wording
    assert SHARED[flag] in next(iter(helps.values()))


def test_sampler_commands_share_priors_and_quiet():
    for name in ("fit", "compare"):
        opts = _options(SUB[name])
        for flag in ("--prior-scale", "--edge-scale", "--cycle-scale", "--lengthscale"):
            assert flag in opts, (name, flag)
    for name in ("fit", "compare", "report", "demo", "collect"):
        assert "--quiet" in _options(SUB[name]), name
    assert "--target-accept" in _options(SUB["fit"])
    # report's draws of T are not the sampler's draws: a different name
    report = _options(SUB["report"])
    assert report["--kernel-draws"].dest == "kernel_draws"
    assert "--draws" not in report["--kernel-draws"].option_strings  # hidden old spelling


def test_old_spellings_still_parse_but_are_hidden(tmp_path):
    counts = tmp_path / "c.csv"
    counts.write_text("source,target,count\na,b,1\nb,a,1\n")
    parser = build_parser()
    args = parser.parse_args(["report", str(counts), "--out", str(tmp_path / "r"), "--draws", "7"])
    assert args.kernel_draws == 7
    args = parser.parse_args(["fit", str(counts), "--out", str(tmp_path / "f.nc"), "--no-progress"])
    assert args.quiet is True
    argv = ["collect", "--agent", "words", "--out", str(tmp_path / "a.jsonl"), "--attempts", "1"]
    assert parser.parse_args([*argv, "--no-progress"]).quiet is True
    helps = SUB["report"].format_help() + SUB["fit"].format_help() + SUB["collect"].format_help()
    assert "--no-progress" not in helps and "[--draws" not in SUB["report"].format_usage()


def test_target_accept_is_checked_when_parsed(tmp_path, capsys):
    counts = tmp_path / "c.csv"
    counts.write_text("source,target,count\na,b,1\nb,a,1\n")
    out = tmp_path / "f.nc"
    assert main(["fit", str(counts), "--out", str(out), "--target-accept", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--target-accept" in err and not out.exists()


def test_warmup_tree_depth_reaches_the_fit_and_is_checked_when_parsed(tmp_path, capsys):
    from detailed_balance import _arviz
    from detailed_balance.inference import load_fit

    counts = tmp_path / "c.csv"
    counts.write_text("source,target,count\na,b,3\nb,a,2\nb,c,4\nc,b,5\na,c,1\nc,a,2\n")
    out = tmp_path / "f.nc"
    argv = ["fit", str(counts), "--out", str(out), "--draws", "20", "--warmup", "20", "--quiet"]
    assert main([*argv, "--warmup-tree-depth", "11"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--warmup-tree-depth" in err and not out.exists()
    assert main([*argv, "--warmup-tree-depth", "3"]) == 0
    assert int(_arviz.attrs(load_fit(out))["warmup_tree_depth"]) == 3


def test_version():
    r = subprocess.run(
        [sys.executable, "-m", "detailed_balance.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.startswith("detailed-balance ")
    assert r.stdout.split()[1][0].isdigit()


def test_warnings_are_one_line_naming_the_flag(capsys):
    message = "12 divergent transitions: intervals may be biased; raise target_accept or simplify"
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        warnings.simplefilter("always")
        warnings.warn(message, UserWarning, stacklevel=1)
        warnings.warn("old API", DeprecationWarning, stacklevel=1)  # library noise: dropped
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: 12 divergent")
    assert "--target-accept" in err and "warnings.warn" not in err  # no source line


def test_the_readme_tour_shows_the_commands_make_tour_runs_with_their_output():
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("make_tour", root / "docs" / "make_tour.py")
    tour = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tour)
    block = (root / "README.md").read_text().split(tour.BEGIN, 1)[1].split(tour.END, 1)[0]
    shown = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    assert shown == tour.COMMANDS  # regenerate with: python docs/make_tour.py
    for command in tour.COMMANDS:  # every command is followed by output, not pasted alone
        after = block.split(f"$ {command}\n", 1)[1]
        assert after.strip() and not after.startswith("$ ")


def test_library_warnings_reach_the_user_as_one_line_each(tmp_path, capsys):
    counts = tmp_path / "one_way.csv"  # seen one way only: the fit warns (identifiability)
    counts.write_text("source,target,count\nA,B,3\nB,C,2\nA,,1\nC,,4\nB,,2\n")
    fit = tmp_path / "f.nc"
    assert main(["fit", str(counts), "--out", str(fit), "--method", "map", "--quiet"]) == 0
    assert main(["summary", str(fit)]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and all(line.startswith("warning: ") for line in lines), err
    assert any("two-way" in line for line in lines)
    assert "warnings.warn" not in err and "Warning:" not in err  # no Python warning format


def test_collect_says_its_chains_and_seed_are_not_the_samplers():
    """collect's --chains/--seed belong to the collection design (OWN_MEANING): its help says so."""
    opts = _options(SUB["collect"])
    assert "trajectory" in opts["--chains"].help and "not fit's" in opts["--chains"].help
    assert "collection seed" in opts["--seed"].help and "not fit's" in opts["--seed"].help


def test_fit_leaves_warmup_to_the_library_so_mclmc_tunes_longer(tmp_path):
    """``fit --warmup`` defaults to None, so ``fit`` picks NUTS's 1,000 or MCLMC's max(2000,
    states) (a CLI default of 1,000 would tune MCLMC too briefly); other commands keep 1,000."""
    from detailed_balance.inference._mclmc import default_warmup

    parser = build_parser()
    counts, out = tmp_path / "c.csv", str(tmp_path / "f.nc")
    counts.write_text("source,target,count\na,b,1\nb,a,1\n")
    counts = str(counts)
    assert parser.parse_args(["fit", counts, "--out", out, "--method", "mclmc"]).warmup is None
    assert parser.parse_args(["fit", counts, "--out", out, "--warmup", "7"]).warmup == 7
    assert parser.parse_args(["compare", counts]).warmup == 1000
    assert default_warmup(5) == 2000 and default_warmup(3000) == 3000

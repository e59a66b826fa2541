"""Run the README's command-line tour and write its real output into README.md.

The commands live here, once; the README shows them with their output between the markers
``<!-- tour-output -->`` and ``<!-- tour-output-end -->``, so the tour cannot go stale: after a
change to the CLI or the models, rerun

    python docs/make_tour.py          # from the repository root, about 3-5 minutes on 2 cores

It runs each command from the repository root (outputs go to ``tour/``, which git ignores), stops
at the first failure, and records the total time. ``--check`` runs the tour and fails if the
README differs (timings aside).
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BEGIN, END = "<!-- tour-output -->", "<!-- tour-output-end -->"

# sizes chosen so the whole tour takes a few minutes on a busy 2-core machine
COMMANDS = [
    "detailed-balance counts examples/data/word_task_synthetic.json --to tour/counts.csv",
    "detailed-balance fit tour/counts.csv --out tour/fit.nc --draws 500 --warmup 500 --quiet",
    "detailed-balance compare tour/counts.csv --draws 500 --warmup 500 --sensitivity --quiet",
    "detailed-balance report tour/fit.nc --out tour/report --no-compare --quiet",
]
TIMING = re.compile(r"\d+(\.\d+)? s\b")  # seconds in the output vary from run to run


def run_tour() -> tuple[str, float]:
    """Run every command; return the console block (``$ command`` then its output) and the
    total seconds."""
    shutil.rmtree(ROOT / "tour", ignore_errors=True)
    (ROOT / "tour").mkdir()
    blocks = []
    start = time.perf_counter()
    for command in COMMANDS:
        argv = shlex.split(command)
        exe = shutil.which(argv[0]) or argv[0]
        t0 = time.perf_counter()
        r = subprocess.run(
            [exe, *argv[1:]],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=1800,
        )
        print(f"{time.perf_counter() - t0:6.1f} s  {command}", file=sys.stderr)
        if r.returncode != 0:
            sys.exit(f"tour command failed ({r.returncode}): {command}\n{r.stdout}")
        blocks.append(f"$ {command}\n{r.stdout.rstrip()}")
    return "\n\n".join(blocks), time.perf_counter() - start


def render(console: str, seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return (
        f"{BEGIN}\n```console\n{console}\n```\n\n"
        f"(Output of `python docs/make_tour.py`, which ran these commands in {minutes} min "
        f"{secs:02d} s on a busy 2-core machine.)\n{END}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="fail if README.md's tour output is out of date"
    )
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        sys.exit(f"README.md has no {BEGIN} ... {END} block")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    console, seconds = run_tour()
    new = head + render(console, seconds) + tail
    if args.check:
        old_block, new_block = (t.split("(Output of")[0] for t in (text, new))
        same = TIMING.sub("", new_block) == TIMING.sub("", old_block)
        print("README tour output is up to date" if same else "README tour output is stale")
        return 0 if same else 1
    README.write_text(new, encoding="utf-8")
    print(f"README.md tour output rewritten ({seconds:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

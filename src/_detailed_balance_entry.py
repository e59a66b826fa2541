"""The ``detailed-balance`` console script: interrupts handled before the package is imported.

Importing ``detailed_balance`` (numpy, pandas) and its command modules takes about a second, and
``detailed_balance.cli.main`` installs its signal handling only after that. A Ctrl-C in that
window would be a ``KeyboardInterrupt`` traceback and death by SIGINT. This module sits outside
the package (importing anything inside it runs the package's ``__init__`` first) and imports
only the standard library: its handlers end the program with one line and status 130 (SIGINT)
or 143 (SIGTERM) until ``cli.main`` installs its own. Nothing has been written yet, so there
is nothing to clean up.
"""

import os
import signal
import sys


def _early_exit(signum, frame):
    code, what = (143, "terminated") if signum == signal.SIGTERM else (130, "interrupted")
    try:
        sys.stderr.write(f"detailed-balance: {what}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr closed: the status still says it
        pass
    os._exit(code)


def main() -> int:
    """Install the early interrupt handling, then run :func:`detailed_balance.cli.main`."""
    signal.signal(signal.SIGINT, _early_exit)  # a console script runs in the main thread
    signal.signal(signal.SIGTERM, _early_exit)
    from detailed_balance.cli import main as cli_main

    return cli_main()

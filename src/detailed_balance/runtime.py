"""How JAX runs in this process: parallel chains, 64-bit floats, a persistent compilation cache.

Importing ``detailed_balance`` changes nothing global. The ``detailed-balance`` command calls
:func:`configure` first thing; Python users may call it once, before their first JAX computation,
to get the same set-up. Without it, fits still compute in float64 (locally, see ``fit``) but run
their chains one after another and compile afresh in every process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path

#: environment variable naming the compilation cache folder; "off" (or "0", "") disables it
CACHE_ENV = "DETAILED_BALANCE_JAX_CACHE"


def default_cache_dir() -> Path | None:
    """The persistent compilation cache folder, or None when ``$DETAILED_BALANCE_JAX_CACHE`` is off.

    Default: ``detailed-balance/jax`` under the user's cache folder (``$XDG_CACHE_HOME`` or
    ``~/.cache`` on Linux, ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%`` on Windows).

    Returns
    -------
    Path or None
        The folder, or None when the cache is switched off.
    """
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("", "0", "off", "false", "no") else Path(value)
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "detailed-balance" / "jax"


def configure(
    chains: int | None = None, *, x64: bool = True, cache: bool | str | os.PathLike = True
) -> None:
    """Set up JAX for fitting: one CPU device per chain, float64, a persistent compilation cache.

    Call it once, before the first JAX computation of the process (the device count cannot change
    afterwards: then a warning says so and chains run one after another).

    Parameters
    ----------
    chains : number of CPU devices, so that this many NUTS chains run in parallel; default: the
        number of CPU cores (at least 2).
    x64 : enable 64-bit floats for the whole process (fits use float64 locally either way).
    cache : True for :func:`default_cache_dir`, a folder, or False: keep compiled programs on
        disk so that a second run with the same model and data shapes does not recompile.

    Examples
    --------
    >>> import detailed_balance
    >>> detailed_balance.configure(chains=2, cache=False)  # doctest: +SKIP
    """
    chains = chains or max(2, os.cpu_count() or 1)
    folder = default_cache_dir() if cache is True else (Path(cache) if cache else None)
    settings: dict[str, object] = {"jax_num_cpu_devices": int(chains)}
    if x64:
        settings["jax_enable_x64"] = True
    if folder is not None:
        settings["jax_compilation_cache_dir"] = str(folder)
        # every program: besides the NUTS program (seconds), a fit compiles its float64
        # evaluation (0.4 s at 100 states) and small helpers (~0.2 s together), each read back
        # in milliseconds (docs/readme/bench-fit.md)
        settings["jax_persistent_cache_min_compile_time_secs"] = 0.0
    if "jax" not in sys.modules:
        # not imported yet: environment variables, read when jax is imported (cheap for commands
        # that never need jax)
        for name, value in settings.items():
            os.environ[name.upper()] = str(int(value) if isinstance(value, bool) else value)
        return
    import jax

    for name, value in settings.items():
        try:
            jax.config.update(name, value)
        except RuntimeError:  # backends already initialised: the device count is fixed
            if jax.local_device_count() < chains:
                warnings.warn(
                    f"JAX already started with {jax.local_device_count()} CPU device(s): NUTS "
                    f"chains will run one after another; call configure(chains={chains}) before "
                    "the first JAX computation to run them in parallel",
                    RuntimeWarning,
                    stacklevel=2,
                )


@contextlib.contextmanager
def x64(enabled: bool = True, *, all_threads: bool = False):
    """64-bit floats (or, with ``enabled=False``, 32-bit) for one block of code; the process's
    setting is restored afterwards. Also a decorator (``@x64()``).

    Where the numerics need float64 (MAP to 1e-9, log evidences of thousands of draws) the
    library uses it locally, whatever the user's JAX set-up: importing ``detailed_balance``
    changes nothing global.

    Parameters
    ----------
    enabled : bool
        float64 (True) or float32 (False).
    all_threads : bool
        Also switch the process-wide default for the block. ``jax.enable_x64`` alone is
        thread-local, but some work runs on JAX's other threads (numpyro's progress bar is a
        host callback, which would check its int32 result under the process's setting and fail
        with "Incorrect output dtype for return value").

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> from detailed_balance.runtime import x64
    >>> with x64():
    ...     print(jnp.zeros(1).dtype)
    float64
    """
    import jax

    before = jax.config.jax_enable_x64
    if all_threads:
        jax.config.update("jax_enable_x64", enabled)
    try:
        with jax.enable_x64(enabled):  # and on this thread, which may hold its own setting
            yield
    finally:
        if all_threads:
            jax.config.update("jax_enable_x64", before)


__all__ = ["CACHE_ENV", "configure", "default_cache_dir", "x64"]

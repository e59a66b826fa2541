"""TransitionKernel: a sparse log T(g←f) from counts, posterior draws or logprobs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class TransitionKernel:
    """Sparse log transition probabilities on directed pairs ``source != target``.

    Attributes
    ----------
    states : tuple of str
    source, target : (M,) int arrays
    log_prob : (M,) or (draws, M) float array
        log T(target ← source); a leading axis holds posterior draws.
    convention : str
        How the kernel was normalised ("escape", "within", "posterior", "logprob").
    """

    states: tuple[str, ...]
    source: np.ndarray
    target: np.ndarray
    log_prob: np.ndarray
    convention: str = "escape"

    @property
    def n_states(self) -> int:
        return len(self.states)

    @property
    def n_draws(self) -> int | None:
        return None if self.log_prob.ndim == 1 else self.log_prob.shape[0]

    def dense(self) -> np.ndarray:
        """Dense T (one draw only), zeros where unobserved."""
        if self.log_prob.ndim != 1:
            raise ValueError("dense() needs a single kernel, not posterior draws")
        t = np.zeros((self.n_states, self.n_states))
        t[self.source, self.target] = np.exp(self.log_prob)
        return t

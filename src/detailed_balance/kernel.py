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

    Examples
    --------
    >>> import numpy as np
    >>> from detailed_balance.synthetic import reversible_chain, sample_counts
    >>> counts = sample_counts(reversible_chain(4, seed=0), attempts_per_source=100, seed=0)
    >>> kernel = counts.kernel("escape")  # T = N / N0: rejections are the escape
    >>> kernel.n_states, kernel.n_draws, kernel.convention
    (4, None, 'escape')
    >>> bool((kernel.dense().sum(axis=1) <= 1).all())
    True
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

"""A run's configuration (what defines its data) and its result (what a session did)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ._designs import DESIGNS


@dataclass(frozen=True)
class RunConfig:
    """What defines a run's data (stored in the log's first line; must match on resume)."""

    agent: str
    template_hash: str
    api: str
    model: str
    design: str = DESIGNS[0]
    attempts: int = 100
    temperature: float = 1.0
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int = 0
    sources: tuple[str, ...] = ()
    chains: int = 1
    logprobs: int | None = None
    extra_body: dict | None = None  # server-specific sampling fields, e.g. {"top_k": 0}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["sources"] = list(self.sources)
        return d


@dataclass
class RunResult:
    """What a collection did (this session), with the log's totals."""

    path: str
    run_id: str
    attempts_requested: int
    attempts_done: int
    new_attempts: int = 0
    errors: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    states: int = 0
    outcomes: dict = field(default_factory=dict)

    def summary(self) -> str:
        out = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        return (
            f"{self.path}: {self.attempts_done}/{self.attempts_requested} attempts done "
            f"({self.new_attempts} new in {self.wall_s:.1f} s; {out or 'none'}); "
            f"{self.states} states; {self.errors} failed after retries, {self.retries} retries; "
            f"tokens {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion"
            + (f"; cost {self.cost:.4f}" if self.cost else "")
        )

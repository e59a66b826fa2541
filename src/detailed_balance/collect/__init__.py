"""Collection: agents, the async collector, the attempt log, the offline LLM, logprob kernels."""

from .agents import Agent, AnimalAgent, Parsed, TemplateAgent, WordSumAgent, load_agent
from .collector import Collector, RunConfig, RunResult
from .local import LocalServer

__all__ = [
    "Agent",
    "AnimalAgent",
    "Collector",
    "LocalServer",
    "Parsed",
    "RunConfig",
    "RunResult",
    "TemplateAgent",
    "WordSumAgent",
    "load_agent",
]

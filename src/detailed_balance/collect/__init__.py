"""Collection: agents, the async collector, the attempt log, the offline LLM, logprob kernels.

The collector is split into private modules, one idea each, re-exported here: ``_config``
(:class:`RunConfig`, :class:`RunResult`), ``_designs`` (:data:`DESIGNS`: which source each
attempt starts from), ``_requests`` (one attempt's HTTP request, retries and reply parsing),
and ``_collector`` (:class:`Collector`, the run loop). The public
modules ``agents``, ``log``, ``safety``, ``local``, ``logprob`` and ``dataset`` are used as they
are. The attempt record's fields are in :mod:`detailed_balance.attempts`.
"""

from ..attempts import MAX_REPLY_CHARS, AttemptRecord, state_problem
from ._collector import Collector, Interrupted
from ._config import RunConfig, RunResult
from ._designs import DESIGNS
from .agents import Agent, AnimalAgent, Parsed, TemplateAgent, WordSumAgent, load_agent
from .local import LocalServer
from .safety import is_loopback

__all__ = [
    "DESIGNS",
    "MAX_REPLY_CHARS",
    "Agent",
    "AnimalAgent",
    "AttemptRecord",
    "Collector",
    "Interrupted",
    "LocalServer",
    "Parsed",
    "RunConfig",
    "RunResult",
    "TemplateAgent",
    "WordSumAgent",
    "is_loopback",
    "load_agent",
    "state_problem",
]

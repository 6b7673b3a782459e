"""Netfilter: the pipeline of base chains, the rule walker, match and target registries.

Pure engine code: depends on ``journey.model`` and ``journey.engine.conntrack``; no I/O, no
textual, no rich.
"""

from journey.engine.netfilter.pipeline import PRIORITIES, BaseChain, Hook, Pipeline, build_pipeline
from journey.engine.netfilter.walker import (
    HookContext,
    HookOutcome,
    NatBinding,
    RejectSpec,
    run_hook,
)

__all__ = [
    "PRIORITIES",
    "BaseChain",
    "Hook",
    "HookContext",
    "HookOutcome",
    "NatBinding",
    "Pipeline",
    "RejectSpec",
    "build_pipeline",
    "run_hook",
]

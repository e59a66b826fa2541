"""The model ladder, one hypothesis per file, all sharing one likelihood (see ``_common``).

Each model is a plain NumPyro function ``model(data, *, prior=..., full=False)`` where ``data`` is a
:class:`detailed_balance.modeldata.ModelData` and ``prior`` a :class:`FieldPrior`. The ladder's
names and the prior live in :mod:`detailed_balance.modeldata` (no JAX, so the command line reads
its choices and defaults there); they are re-exported here.
"""

from detailed_balance.modeldata import LADDER, FieldPrior

from .nonreversible import nonreversible
from .reversible import reversible
from .unconstrained import unconstrained

MODELS = dict(zip(LADDER, (unconstrained, reversible, nonreversible), strict=True))

__all__ = ["LADDER", "MODELS", "FieldPrior", "nonreversible", "reversible", "unconstrained"]

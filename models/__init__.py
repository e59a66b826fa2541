"""The model ladder, one hypothesis per file, all sharing one likelihood (see ``_common``).

Each model is a plain NumPyro function ``model(data, *, prior=..., full=False)`` where ``data`` is a
:class:`detailed_balance.modeldata.ModelData`.
"""

from .nonreversible import nonreversible
from .reversible import reversible
from .unconstrained import unconstrained

MODELS = {"unconstrained": unconstrained, "reversible": reversible, "nonreversible": nonreversible}

__all__ = ["MODELS", "nonreversible", "reversible", "unconstrained"]

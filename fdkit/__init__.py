"""fdkit: vectorised, numba-jitted finite-difference and complex-step derivatives.

Public functions: :func:`derivative`, :func:`gradient`, :func:`jacobian`, :func:`hessian`,
:func:`check_gradient`, :func:`check_jacobian`, :func:`taylor_test`, :func:`optimal_step`,
:class:`Objective` (for scipy's optimisers) and :func:`close_pools` (``workers=`` pools).  A
numba ``@njit`` function runs inside fdkit's compiled kernels; a plain Python callable works too,
slower, and a batched one (``vectorized=True``) gets stacks of points.
"""

from ._result import DerivativeResult
from .api import derivative, gradient, hessian, jacobian
from .check import GradientCheck, TaylorTest, check_gradient, check_jacobian, taylor_test
from .engine.workers import close_pools
from .objective import Objective
from .methods import METHODS
from .stencils import get_stencil
from .steps import optimal_step

__version__ = "0.1.0"

__all__ = [
    "derivative",
    "gradient",
    "jacobian",
    "hessian",
    "check_gradient",
    "check_jacobian",
    "taylor_test",
    "TaylorTest",
    "optimal_step",
    "close_pools",
    "Objective",
    "get_stencil",
    "METHODS",
    "DerivativeResult",
    "GradientCheck",
    "__version__",
]

"""Grids, boundary closures, stencils and finite volumes: PDESystem -> SemiDiscrete.

``pdeforge.discretize.discretize(system, order=2, scheme="fd")`` is the stage function;
``pdeforge.discretize`` itself is this package (the name is fixed by the project layout).
"""

from pdeforge.discretize.grid import UniformGrid
from pdeforge.discretize.semidiscrete import SemiDiscrete, discretize

__all__ = ["SemiDiscrete", "UniformGrid", "discretize"]

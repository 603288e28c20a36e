"""The equation language: fields, coordinates, operators, safe parsing, PDE systems."""

from pdeforge.symbolic.boundary import BoundaryCondition, dirichlet, neumann, robin
from pdeforge.symbolic.parser import Namespace, parse_expression
from pdeforge.symbolic.system import PDESystem, coordinate_symbols

__all__ = [
    "BoundaryCondition",
    "Namespace",
    "PDESystem",
    "coordinate_symbols",
    "dirichlet",
    "neumann",
    "parse_expression",
    "robin",
]

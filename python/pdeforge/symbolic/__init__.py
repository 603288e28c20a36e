"""The equation language: fields, coordinates, operators, safe parsing, PDE systems."""

from .boundary import BoundaryCondition, dirichlet, neumann, robin
from .parser import Namespace, parse_expression
from .system import PDESystem, coordinate_symbols

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

"""Neural pieces coupled to the symbolic systems (PyTorch): closures inside the solver, PINO.

Modules: :mod:`pdeforge.neural.closures` (closure modules, training), :mod:`pdeforge.neural.pino`
(FNO + generated-residual loss, trainer), :mod:`pdeforge.neural.pino_data` (inputs, solver
reference). Nothing here is imported by ``import pdeforge``, so torch stays unloaded.
"""

"""Everything that talks to Julia or prints Julia, in one place (a plugin of the stages).

- :mod:`~pdeforge.julia.environment`: finding a Julia installation, juliacall's variables
  (fails fast, never downloads);
- :mod:`~pdeforge.julia.bridge`: the juliacall session that loads ``PDEForge.jl`` (shipped
  in this package; in a checkout a link to ``julia/PDEForge.jl`` at the repository root);
- :mod:`~pdeforge.julia.printer` and :mod:`~pdeforge.julia.reader`: SymPy -> Julia text and
  back (an allow-list reader, nothing is evaluated);
- :mod:`~pdeforge.julia.simplifier`: Symbolics.jl's ``simplify`` (``simplifier="julia"``);
- :mod:`~pdeforge.julia.target` and :mod:`~pdeforge.julia.kernels`: ``build_function``
  kernels (``backend="julia"``);
- :mod:`~pdeforge.julia.methodoflines`, :mod:`~pdeforge.julia.script`,
  :mod:`~pdeforge.julia.export` and :mod:`~pdeforge.julia.mol_route`: the MethodOfLines.jl
  problem, the standalone script (``pdeforge export-julia``) and the in-process route.

The target and the simplifier reach the stages through the ``pdeforge.targets`` and
``pdeforge.simplifiers`` entry points (pyproject.toml); no stage imports this package.
"""

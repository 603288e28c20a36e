"""Neural pieces coupled to the symbolic systems (PyTorch): closures inside the solver, PINO.

Imported lazily: ``import pdeforge`` does not import torch.
"""

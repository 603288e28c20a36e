#!/bin/sh
# GPU check of the ProbConserv example: trains the three deep ensembles on CUDA at the laptop
# preset (about a minute and a half on one H100), prints the MSE / CE / LL table and exits
# non-zero unless CE <= 1e-10 after the updates and ProbConserv's MSE is not above the base
# model's on any equation.  Usage: examples/probconserv_gpme_cuda.sh [output folder]
set -e
cd "$(dirname "$0")/.."
PY=$(command -v python || command -v python3)
"$PY" examples/probconserv_gpme.py --device cuda --no-progress --check --out "${1:-probconserv_gpme_cuda_out}"

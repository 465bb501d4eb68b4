#!/usr/bin/env bash
# The named runs a behaviour-preserving change must reproduce bit for bit (docs/architecture.md):
#   bash scripts/equivalence_runs.sh OUT_DIR      then   python scripts/compare_runs.py BEFORE AFTER
# Each is a 1,000-image MNIST smoke run; the quantized ones refer to the tinySNN step run.
set -euo pipefail
out=${1:?usage: equivalence_runs.sh OUT_DIR}
py=${PYTHON:-.venv/bin/python}
train() { name=$1; shift; "$py" -m tinysnn.train run=smoke run.progress=false hydra.run.dir="$out/$name" "$@" >"$out/$name.log" 2>&1 || { cat "$out/$name.log"; exit 1; }; echo "$name"; }
mkdir -p "$out"
train baseline
for integrator in step closed_form compiled; do
    train "tinysnn_$integrator" experiment=tinysnn_mnist sim.integrator=$integrator
done
ref="$out/tinysnn_step"
train itq_wn_stochastic_r2 experiment=tinysnn_mnist scheme=itq precision=q8 rounding=stochastic target=wn \
    run.replicas=2 quant.reference="$ref"
train itq_grid_r4 experiment=tinysnn_mnist scheme=itq 'quant.grid_bits=[8,4]' \
    'quant.grid_roundings=[nearest,stochastic]' quant.reference="$ref"
train ptq_wn_q8 experiment=tinysnn_mnist scheme=ptq precision=q8 rounding=nearest target=wn quant.reference="$ref"
train ptq_wn_q8_stochastic experiment=tinysnn_mnist scheme=ptq precision=q8 rounding=stochastic target=wn \
    quant.reference="$ref"
"$py" scripts/integer_counts.py "$out/ptq_wn_q8" "$out/ptq_wn_q8_stochastic"

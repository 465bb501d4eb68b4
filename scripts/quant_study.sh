#!/usr/bin/env bash
# The quantization study for one dataset: PTQ of an FP32 reference over the whole grid, and ITQ
# grids trained as one simulation each (quant.grid_bits × quant.grid_roundings): full epochs at
# 8 and 4 bits, a shorter run at every width.
#
#   bash scripts/quant_study.sh <fp32 run folder> <experiment preset> <out folder> [n_jobs] [itq_short_images] [n_label] [steps...]
#   e.g. bash scripts/quant_study.sh docs/runs/mnist_tinysnn_adaptive tinysnn_mnist multirun/quant_mnist 2 10000 10000
#
# Each step is one Hydra --multirun (joblib launcher, n_jobs in parallel); name steps after the
# sixth argument to run only those. Running the study again with the same out folder skips
# every job that already finished.
set -euo pipefail
ref=${1:?fp32 run folder}; preset=${2:?experiment preset (conf/experiment)}; out=${3:?out folder}
jobs=${4:-2}; short=${5:-10000}; n_label=${6:-null}
shift $(( $# < 6 ? $# : 6 ))
steps=("$@")
py=${PYTHON:-.venv/bin/python}
common=("experiment=$preset" run=default "run.n_label=$n_label" run.progress=false eval_threads=1
        "quant.reference=$ref" hydra/launcher=joblib "hydra.launcher.n_jobs=$jobs")
all_roundings='quant.grid_roundings=[truncate,nearest,stochastic]'

"$py" -m tinysnn.ranges "runs=[$ref]"

sweep() {  # sweep <name> <overrides...>
  if (( ${#steps[@]} )) && [[ ! " ${steps[*]} " == *" $1 "* ]]; then return; fi
  "$py" -m tinysnn.train -m "${common[@]}" "${@:2}" "hydra.sweep.dir=$out/$1"
}

sweep ptq_fp32 scheme=ptq precision=fp32
sweep ptq scheme=ptq precision=q16,q12,q10,q8,q6,q4 rounding=truncate,nearest,stochastic target=w,wn
# full epochs: qW at 8 and 4 bits with every rounding; qWN with stochastic rounding
sweep itq_full scheme=itq target=w 'quant.grid_bits=[8,4]' "$all_roundings"
sweep itq_full_wn scheme=itq target=wn 'quant.grid_bits=[8,4]' 'quant.grid_roundings=[stochastic]'
# shorter runs: FP32 of the same length, then every width and rounding
sweep itq_fp32 scheme=itq precision=fp32 "run.n_train=$short"
sweep itq_short scheme=itq "run.n_train=$short" target=w 'quant.grid_bits=[16,8,6,4]' "$all_roundings"
sweep itq_short_wn scheme=itq "run.n_train=$short" target=wn 'quant.grid_bits=[16,8,6]' "$all_roundings"
# 4-bit qWN with truncation or nearest rounds u_th and θ_plus to 0: every neuron fires at every
# step whatever the input, so nothing can be learned; 1,000 images show it
sweep itq_wn4_degenerate scheme=itq run.n_train=1000 target=wn 'quant.grid_bits=[4]' 'quant.grid_roundings=[truncate,nearest]'

#!/usr/bin/env bash
# The quantization study for one dataset: PTQ of an FP32 reference over the whole grid, and ITQ
# (full epochs at 8 and 4 bits with stochastic rounding, a shorter run elsewhere).
#
#   bash scripts/quant_study.sh <fp32 run folder> <experiment preset> <out folder> [n_jobs] [itq_short_images] [n_label]
#   e.g. bash scripts/quant_study.sh docs/runs/mnist_tinysnn_adaptive tinysnn_mnist multirun/quant_mnist 2 10000 10000
#
# Each line is one Hydra --multirun (joblib launcher, n_jobs in parallel). Running the study
# again with the same out folder skips every job that already finished.
set -euo pipefail
ref=${1:?fp32 run folder}; preset=${2:?experiment preset (conf/experiment)}; out=${3:?out folder}
jobs=${4:-2}; short=${5:-10000}; n_label=${6:-null}
py=${PYTHON:-.venv/bin/python}
common=("experiment=$preset" run=default "run.n_label=$n_label" run.progress=false eval_threads=1
        "quant.reference=$ref" hydra/launcher=joblib "hydra.launcher.n_jobs=$jobs")

"$py" -m tinysnn.ranges "$ref"

sweep() {  # sweep <name> <overrides...>
  "$py" -m tinysnn.train -m "${common[@]}" "$@" "hydra.sweep.dir=$out/$1"
}

sweep ptq_fp32 scheme=ptq precision=fp32
sweep ptq scheme=ptq precision=q16,q12,q10,q8,q6,q4 rounding=truncate,nearest,stochastic target=w,wn
sweep itq_full scheme=itq precision=q8,q4 rounding=stochastic target=w,wn
sweep itq_fp32 scheme=itq precision=fp32 "run.n_train=$short"
sweep itq_short scheme=itq "run.n_train=$short" precision=q16,q6 rounding=truncate,nearest,stochastic target=w,wn
sweep itq_short_8_4 scheme=itq "run.n_train=$short" precision=q8,q4 rounding=truncate,nearest target=w,wn

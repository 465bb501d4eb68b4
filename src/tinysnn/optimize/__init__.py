"""``python -m tinysnn.optimize``: the paper's optimization framework (Fig. 3) as one resumable command.

* ``stages``: cached, resumable stages (``<out>/<stage>/stage.json``, keyed by a hash of their inputs);
* ``training``: the training stages' ``tinysnn.train --multirun`` commands;
* ``flow``: the stage list — FP32 tinySNN and baseline, ranges, PTQ, ITQ, select, report, deploy;
* ``table``: the final plain-text table (``<out>/summary.txt``);
* ``__main__``: the Hydra command (conf/optimize.yaml, presets in conf/optimize/).
"""

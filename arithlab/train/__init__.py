"""arithlab.train: the sharded training core, from a laptop CPU to a multi-host pod.

mesh.py (device mesh, logical-axis shardings) -> step.py (train state, jitted step) ->
optim.py (AdamW, schedule) -> loop.py (the run: data, progress, eval, checkpoints) with
checkpoint.py (orbax, exact resume), decode.py (KV-cache greedy decoding),
evaluate.py (length grid, heatmaps) and metrics.py (the run record and console).
"""

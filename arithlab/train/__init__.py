"""arithlab.train: the sharded training core, from a laptop CPU to a multi-host pod.

mesh.py (device mesh, logical-axis shardings) -> step.py (train state, jitted step) ->
optim.py (AdamW, schedule) -> loop.py (the run: data, progress, eval, checkpoints) with
checkpoint.py (orbax, exact resume), rundir.py (the run directory: lock, resume check),
decode.py (KV-cache greedy decoding), evaluate.py (length grid, heatmaps) and metrics.py
(the run record and console).

Switches live in the config (arithlab/config.py): mesh.{data,fsdp,tensor} and the rules
table model.logical_rules place everything; model.dtype="bfloat16" computes in bf16 while
parameters and optimizer state stay float32 (the master weights); train.grad_accum splits a
step into micro-batches; data.loss="answer"|"all" picks the loss tokens. Multi-host runs
start `arithlab.main` once per host with --coordinator_address/--num_processes/--process_id
and data.num_shards a multiple of the process count.
"""

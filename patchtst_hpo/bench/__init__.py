"""`python -m patchtst_hpo.bench [bench=smoke|gpu]`: how fast, how close to the machine, and against what.

Everything is measured side by side in one process and reported as medians of `repeats` runs, with ratios:
training throughput and an MFU-like ratio against this machine's fp32 matmul rate; our Lightning path
against a plain PyTorch loop on the same model and tensors; HuggingFace's PatchTSTForClassification at a
matched parameter count (optional `bench` extra); the data path; the sweeper's per-trial overhead; exact
parameter accounting of every 2B candidate on the meta device; on a GPU, plain loop vs our path at 20M, 200M
and 2B with MFU against a bf16 matmul timed in the same run; a job's pruning CPU against the study's size; a
tiny sweep's wall time under a competing load by thread policy. Writes results.json and results.md in the run
folder (outputs/bench/<time>/). See docs/performance.md.

Modules: `loops` (timed loops), `sections` (training, data, trial overhead, param accounting), `hf`, `gpu`,
`pruning` (+ `studies`: synthetic studies), `threads`, `panel`, `markdown` (the report), `__main__` (app).
"""

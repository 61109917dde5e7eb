"""`petl-bench perf`: the cost of each method — step time, throughput and peak memory — as ratios to full
fine-tuning and to peft on the same model and batch, measured side by side in one run.

cases.py plans what to measure, measure.py measures one case in a fresh process (`python -m
benchmark.perf.measure`), run.py runs them all, computes the ratios and writes one JSON record per case
under results/perf/<backbone>/<label>.json. This package imports nothing heavy itself, so the worker
module runs cleanly with `-m`.
"""

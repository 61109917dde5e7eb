"""Measure one perf case in this process: `python -m benchmark.perf.measure '<case JSON>'`.

Each case runs in a fresh process because peak RSS is a per-process high-water mark: a
previous configuration's peak would otherwise hide this one's. The worker builds the
backbone with random weights from its shipped config (no Hub), applies the method (ours,
or peft's when the case says so), then times full training steps — forward, backward and
optimiser — on a fixed random batch. On CUDA it trains under bf16 autocast with a fused
AdamW and reads `max_memory_allocated`, reset after warm-up (by then the optimiser state exists). On CPU the
RSS high-water mark also counts what glibc keeps of freed tensors (its dynamic mmap threshold moves large
blocks onto the heap, where they stay resident after free), which hid the difference between methods (LoRA
on bart-large: 7.5 GB by high-water mark, 5.5 GB live). So on CPU a second worker (`phase="memory"`) pins
the mmap threshold before building anything — every large tensor is then returned to the OS when freed —
and after one warm-up step runs one more while a thread samples RSS every millisecond: that peak, over the
post-import baseline, is the CPU peak. Timing runs in the first worker, under the default allocator. Either
peak holds weights, gradients, optimiser state and activations.
The result is one JSON line on stdout, prefixed with `RESULT `.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.perf.cases import Case, head_for, pair

RESULT = "RESULT "
KIB = 1024


class ReferenceUnavailable(RuntimeError):
    """A reference implementation (peft) that cannot run here: not installed, or refusing the model."""


# ---- memory -------------------------------------------------------------------------------------------------------

def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _libc() -> Any:
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_freed() -> None:
    """Hand freed heap memory back to the OS (glibc keeps it otherwise)."""
    import gc

    gc.collect()
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def return_large_frees() -> bool:
    """Pin glibc's mmap threshold (M_MMAP_THRESHOLD = -3) at 64 KiB: every tensor-sized block is mmapped and
    unmapped on free, so RSS follows live memory; False where this is not glibc."""
    libc = _libc()
    return bool(libc is not None and hasattr(libc, "mallopt") and libc.mallopt(-3, 64 * KIB) == 1)


class RssSampler:
    """Samples this process's RSS every `interval_s` in a thread while the block runs (torch releases the GIL
    in its kernels, so the sampler keeps up); `peak` is the largest RSS seen, in bytes."""

    def __init__(self, interval_s: float = 0.001) -> None:
        self.interval_s = interval_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval_s)

    def __enter__(self) -> RssSampler:
        self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


def rss_bytes() -> int:
    """This process's resident set now, from /proc/self/statm (cheap enough to sample every millisecond);
    without /proc, the peak so far is the best getrusage offers."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * KIB


def rss_peak_bytes() -> int:
    kib = _status_kib("VmHWM")
    if kib is None:
        import resource

        kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib * KIB


# ---- model ----------------------------------------------------------------------------------------------------------

def _head_kwargs(backbone: str, head: str) -> dict[str, Any]:
    from benchmark.backbones.registry import get_backbone

    kwargs: dict[str, Any] = {"num_labels": 2} if head == "seq-cls" else {}
    if head == "seq-cls" and get_backbone(backbone).config().pad_token_id is None:
        kwargs["pad_token_id"] = get_backbone(backbone).config().eos_token_id  # GPT-2 has no pad token
    return kwargs


def _ours(case: Case, model: nn.Module, head: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Apply our method at the case's budget (solved against the backbone with the paper formula, on `meta`)."""
    from benchmark import registry
    from benchmark.backbones.anatomy import core_of
    from benchmark.backbones.registry import build_model
    from benchmark.methods.budget import solve

    method = registry.get_method(case.method)
    if case.options:
        mods = tuple(dataclasses.replace(m, options={**m.options, **case.options}) for m in method.mods)
        method = dataclasses.replace(method, mods=mods)
    meta = build_model(case.backbone, head, meta=True, **kwargs)
    total = sum(p.numel() for p in core_of(meta).parameters())
    solved, sizes = solve(method, case.budget, lambda m: m.formula(meta), total)
    solved.apply(model)
    return {"sizes": sizes, "mods": [m.label() for m in solved.mods], "formula": solved.formula(meta)}


def _peft(case: Case, model: nn.Module, head: str) -> tuple[nn.Module, dict[str, Any]]:
    """Wrap `model` with peft's implementation of the case's pair (imported here: peft is optional)."""
    try:
        import peft
    except ImportError as e:
        raise ReferenceUnavailable("peft is not installed (pip install 'petl-bench[test]')") from e
    p = pair(case.compare)
    task_type = "SEQ_2_SEQ_LM" if head == "seq2seq" else "SEQ_CLS"
    config = getattr(peft, p.peft_config)(task_type=task_type, **p.peft_kwargs)
    wrapped = peft.get_peft_model(model, config)
    return wrapped, {"peft_version": peft.__version__, "peft_config": {"class": p.peft_config, **p.peft_kwargs}}


def build(case: Case, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The case's model on `device`, method applied, with its parameter counts."""
    from benchmark.backbones.anatomy import core_of
    from benchmark.backbones.registry import build_model

    head = head_for(case.backbone)
    kwargs = _head_kwargs(case.backbone, head)
    model = build_model(case.backbone, head, init="random", seed=0, **kwargs)
    backbone_params = sum(p.numel() for p in core_of(model).parameters())
    if case.impl == "peft":
        model, info = _peft(case, model, head)
    else:
        info = _ours(case, model, head, kwargs)
    model.to(device).train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    formula = info.get("formula")  # ours only: the count the budget was solved with
    info.update(head=head, params={"trainable": trainable, "total": total, "backbone": backbone_params,
                                   "trainable_pct": 100 * trainable / backbone_params, "formula": formula,
                                   "formula_pct": 100 * formula / backbone_params if formula else None})
    return model, info


def make_batch(model: nn.Module, case: Case, head: str, device: torch.device) -> dict[str, torch.Tensor]:
    """A fixed random batch of real-looking token ids (special ids avoided) with the head's labels."""
    g = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    ids = torch.randint(5, vocab - 1, (case.batch, case.seq), generator=g)
    if head == "seq2seq":
        labels = torch.randint(5, vocab - 1, (case.batch, case.seq), generator=g)
    else:
        labels = torch.randint(0, 2, (case.batch,), generator=g)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {k: v.to(device) for k, v in batch.items()}


# ---- steps ----------------------------------------------------------------------------------------------------------

def optimizer(model: nn.Module, cuda: bool) -> torch.optim.Optimizer:
    """AdamW over the trainable tensors only: a frozen backbone carries no optimiser state. Fused on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=1e-5, fused=True) if cuda else torch.optim.AdamW(params, lr=1e-5)


def train_step(model: nn.Module, batch: dict[str, torch.Tensor], opt: torch.optim.Optimizer, cuda: bool) -> float:
    """One full step; returns its wall time (synchronised on CUDA so the GPU's work is inside it)."""
    start = time.perf_counter()
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
        loss = model(**batch).loss
    loss.backward()
    opt.step()
    if cuda:
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    if not torch.isfinite(loss.detach()):
        raise FloatingPointError(f"loss is {loss.item()} at a training step")
    return elapsed


def count_flops(model: nn.Module, batch: dict[str, torch.Tensor], opt: torch.optim.Optimizer, cuda: bool) -> int:
    """FLOPs of one training step (forward + backward), counted by torch's dispatcher: the model FLOPs that MFU
    divides by, for this method (a frozen backbone skips its weight gradients). torch 2.13 has no formula for
    CPU's fused attention kernel, so on CPU the attention scores (~3% at 128 tokens) are left out."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        train_step(model, batch, opt, cuda)
    return int(counter.get_total_flops())


def _device(case: Case) -> torch.device:
    if case.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(case.device)


def measure(case: Case) -> dict[str, Any]:
    """Time and measure one case; the dict is the perf record's measurement part."""
    if case.threads > 0:
        torch.set_num_threads(case.threads)
    device = _device(case)
    cuda = device.type == "cuda"
    live = case.phase == "memory" and return_large_frees()
    baseline = rss_bytes()
    model, info = build(case, device)
    model_bytes = torch.cuda.memory_allocated() if cuda else rss_bytes() - baseline
    batch = make_batch(model, case, info["head"], device)
    opt = optimizer(model, cuda)
    if case.phase == "memory":
        return {"memory": {**_sampled_memory(model, batch, opt, cuda, baseline, live), "model_bytes": model_bytes}}
    flops = count_flops(model, batch, opt, cuda) if case.flops and case.warmup > 0 else None
    for _ in range(case.warmup - (1 if flops is not None else 0)):
        train_step(model, batch, opt, cuda)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times = [train_step(model, batch, opt, cuda) for _ in range(case.steps)]
    step = statistics.median(times)
    memory = ({"peak_bytes": torch.cuda.max_memory_allocated(), "kind": "cuda_max_allocated"} if cuda else
              {"peak_bytes": rss_peak_bytes() - baseline, "kind": "rss_hwm", "baseline_rss_bytes": baseline})
    tokens = case.batch * case.seq * (2 if info["head"] == "seq2seq" else 1)
    return {**info, "step_times_s": times, "step_s": step, "tokens_per_step": tokens, "tokens_per_s": tokens / step,
            "flops_per_step": flops, "flops_per_s": flops / step if flops else None,
            "memory": {**memory, "model_bytes": model_bytes},
            "device": _device_info(device, cuda)}


def _sampled_memory(model: nn.Module, batch: dict[str, torch.Tensor], opt: torch.optim.Optimizer, cuda: bool,
                    baseline: int, live: bool) -> dict[str, Any]:
    """One warm-up step (the optimiser state then exists), then one step with RSS sampled: its peak over the
    post-import baseline."""
    train_step(model, batch, opt, cuda)
    release_freed()
    with RssSampler() as sampler:
        train_step(model, batch, opt, cuda)
    return {"peak_bytes": sampler.peak - baseline, "kind": "rss_sampled_live" if live else "rss_sampled",
            "baseline_rss_bytes": baseline}


def _device_info(device: torch.device, cuda: bool) -> dict[str, Any]:
    import platform

    return {"type": device.type, "name": torch.cuda.get_device_name(device) if cuda else
            f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)",
            "threads": torch.get_num_threads(), "amp": "bf16" if cuda else None,
            "optimizer": "AdamW (fused)" if cuda else "AdamW"}


def outcome(case: Case) -> dict[str, Any]:
    """Measure one case. A reference row (peft) that cannot run here is `unavailable` with its reason, not a
    failure: peft is optional and its versions drift (peft 0.21.2 refuses RoBERTa under transformers 5.24). A case
    of ours that raises is `failed`; the parent records either and goes on with the next case."""
    try:
        return {"status": "ok", **measure(case)}
    except Exception as e:
        import traceback

        traceback.print_exc()
        reason = f"{type(e).__name__}: {e}" if not isinstance(e, ReferenceUnavailable) else str(e)
        return {"status": "unavailable" if case.impl != "petl-bench" else "failed", "error": reason}


def main(argv: list[str]) -> int:
    result = outcome(Case.from_dict(json.loads(argv[0])))
    print(RESULT + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

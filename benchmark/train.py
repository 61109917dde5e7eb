"""Train one (task, method, budget, seed) with the transformers Trainer and write its record.

The run folder holds `run.log` (everything the run printed), `checkpoint/` (the Trainer's
checkpoints, each stamped with the run's digest, from which a restarted run resumes) and, at the
very end, `delta.safetensors` (the trained tensors) and `record.json`, written atomically; then
the full checkpoints are removed unless asked to keep them. A crash leaves the log and no record;
a NaN/inf loss ends the run early with status `diverged`, which is a result and is recorded as such.
One process trains a folder at a time (benchmark.rundir.run_lock).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from benchmark import determinism, plugins, registry, rundir, warmstart
from benchmark.methods.budget import solve
from benchmark.methods.space import Method, method_from_dict
from benchmark.errors import ConfigError, disk_full
from benchmark.record import Record, now, provenance, write_record
from benchmark.spec import RunSpec, TaskSettings

log = logging.getLogger("petl_bench.train")


def _method(raw: dict[str, Any]) -> Method:
    """Rebuild the method from the spec's plain-JSON form (the spec is all a job receives). Plugin forms are
    registered first; a plugin that failed to load at planning time fails its runs here, naming its package."""
    registry.load_plugins()
    if raw.get("broken"):
        raise registry.PluginError(raw["broken"])
    method = method_from_dict(raw["name"], {k: raw[k] for k in ("compose", "train_all")})
    return dataclasses.replace(method, source=raw.get("source", "config"), description=raw.get("description", ""))


def count_params(model: Any) -> dict[str, int]:
    """Trainable and total parameter counts; `total_backbone` is the pretrained model alone (the paper's %
    denominator), excluding the task head and the method's new tensors."""
    from benchmark.backbones.anatomy import core_of

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    backbone = sum(p.numel() for n, p in core_of(model).named_parameters() if ".petl_" not in f".{n}")
    return {"trainable": trainable, "total": total, "backbone": backbone}


def interactive() -> bool:
    """Progress bars only for a person at a terminal: in a file they are kilobytes of carriage returns."""
    return sys.stderr.isatty()


def _fmt_metric(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class LogEvents(TrainerCallback):
    """One log line per Trainer event, so run.log reads as a story: the training loss every `log_steps`, and
    every evaluation's metrics (the Trainer itself only prints them to stdout, which Snakemake discards)."""

    SKIP = frozenset({"epoch", "total_flos", "eval_runtime", "eval_samples_per_second", "eval_steps_per_second",
                      "train_runtime", "train_samples_per_second", "train_steps_per_second"})

    def __init__(self) -> None:
        self.final = False  # set before the closing evaluation of the selected model

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        logs = logs or {}
        if any(k.startswith("eval_") for k in logs):
            kind = "final eval" if self.final else "eval"
        else:
            kind = "training done" if "train_loss" in logs else "train"
        items = [f"{k.removeprefix('eval_')}={_fmt_metric(v)}" for k, v in logs.items() if k not in self.SKIP]
        if items:
            log.info("step %d/%d %s: %s", state.global_step, state.max_steps, kind, " ".join(items))


class DivergenceWatch(TrainerCallback):
    """Stop on a non-finite training loss and remember the step: divergence is a result, not a crash."""

    def __init__(self) -> None:
        self.diverged_at: int | None = None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged_at = state.global_step
            control.should_training_stop = True


def _training_args(train: dict[str, Any], out: Path, seed: int, threads: int, has_length: bool,
                   args_class: type, extra: dict[str, Any] | None = None) -> Any:
    """TrainingArguments from the recipe. With `select_metric`, every evaluation saves a checkpoint and the
    best one (by that metric on the eval set; `loss` is minimised) is restored at the end — the paper's
    checkpoint selection (GLUE: per epoch; XSum: ROUGE-2; en-ro: validation loss)."""
    import torch

    steps = train.get("max_steps") or -1
    eval_steps = train.get("eval_steps")
    strategy = train.get("eval_strategy") or ("steps" if eval_steps else "no")
    select = train.get("select_metric") if strategy != "no" else None
    cuda = torch.cuda.is_available()
    return args_class(
        output_dir=str(out / "checkpoint"),
        per_device_train_batch_size=train["batch_size"],
        per_device_eval_batch_size=train.get("eval_batch_size", max(train["batch_size"], 64)),
        gradient_accumulation_steps=train.get("grad_accum", 1),
        learning_rate=train["learning_rate"],
        lr_scheduler_type=train.get("lr_scheduler", "linear"),
        warmup_steps=train.get("warmup_ratio", 0.0),
        weight_decay=train.get("weight_decay", 0.0),
        max_grad_norm=train.get("max_grad_norm", 1.0),
        adam_beta1=train.get("adam_beta1", 0.9),
        adam_beta2=train.get("adam_beta2", 0.999),
        adam_epsilon=train.get("adam_epsilon", 1e-8),
        label_smoothing_factor=train.get("label_smoothing", 0.0),
        max_steps=steps,
        num_train_epochs=train.get("num_epochs", 1) if steps <= 0 else 1,
        eval_strategy=strategy,
        eval_steps=eval_steps,
        load_best_model_at_end=select is not None,
        metric_for_best_model=select,
        greater_is_better=None if select is None else select != "loss",
        logging_steps=train.get("log_steps", 10),
        logging_nan_inf_filter=False,
        save_strategy="epoch" if strategy == "epoch" else "steps",
        save_steps=eval_steps if select and strategy == "steps" else train.get("save_steps", 500),
        save_total_limit=1,
        save_only_model=False,
        seed=seed,
        data_seed=seed,
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda and torch.cuda.is_bf16_supported(),
        optim="adamw_torch_fused" if cuda else "adamw_torch",
        full_determinism=bool(train.get("deterministic", False)),  # GPU repeatability at a speed cost
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not interactive(),
        **(extra or {}),
    )


def _hf_class(ref: str | type) -> type:
    """A transformers class given by name, or any class as "module:Class" (tasks name them so that importing a
    task stays cheap)."""
    import importlib

    import transformers

    if isinstance(ref, str) and ":" in ref:
        module, _, name = ref.partition(":")
        return getattr(importlib.import_module(module), name)
    return getattr(transformers, ref) if isinstance(ref, str) else ref


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def process_age_s() -> float | None:
    """Seconds since this process started (Linux /proc; None elsewhere): the interpreter's start and the imports
    before any timer of ours runs are part of a job's fixed cost too."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))  # field 22: start, in clock ticks
    except (OSError, ValueError, IndexError):
        return None


def timing(startup: float | None, setup: float, train_loop: float, curve: list[dict[str, Any]], final_eval: float,
           record: float, fixed_cpu: float | None = None) -> dict[str, Any]:
    """Where a run's wall time went. `fixed_s` is what every job pays whatever its length (process start and
    imports, model and data, provenance); evaluations inside the training loop (the Trainer's `eval_runtime`)
    count as evaluation, not training. `fixed_cpu_s` is the CPU time of the same phases: on cores other jobs share,
    wall time stretches with their load, CPU time hardly does, so it compares overhead across machines and loads.
    `warm_start`: the process was forked from the workflow's warm server (benchmark.warmstart), its imports done."""
    loop_eval = sum(h.get("eval_runtime", 0.0) for h in curve)
    fixed = (startup or 0.0) + setup + record
    return {"startup_s": startup, "setup_s": setup, "train_s": max(0.0, train_loop - loop_eval),
            "eval_s": loop_eval + final_eval, "record_s": record, "fixed_s": fixed, "fixed_cpu_s": fixed_cpu,
            "warm_start": warmstart.FORKED}


def train_run(spec: RunSpec | dict[str, Any], out: Path, *, data_path: Path | None = None, force: bool = False,
              keep_checkpoints: bool = False) -> dict:
    """Train the run `spec` describes into folder `out`; return its record (also written to out/record.json).

    Holds the folder's lock throughout; resumes only from this run's own complete checkpoints; `force` discards
    whatever an earlier run left in the folder and trains from scratch."""
    spec = spec if isinstance(spec, RunSpec) else RunSpec.from_json(spec)
    out = Path(out)
    with rundir.run_lock(out):
        record_path = out / "record.json"
        if record_path.exists() and not force:
            raise FileExistsError(f"{record_path} already holds a record; move it away or pass --force to replace it")
        if force:
            rundir.start_fresh(out)
        return _train(spec, out, data_path, keep_checkpoints)


def _train(spec: RunSpec, out: Path, data_path: Path | None, keep_checkpoints: bool) -> dict[str, Any]:
    import torch
    from transformers import set_seed

    started, t0, startup = now(), time.perf_counter(), process_age_s()
    # the task sees this run's recipe (grid-block overrides applied), not only its instance's
    seed, threads, settings = spec.seed, spec.threads, dataclasses.replace(spec.task, train=spec.train)
    torch.set_num_threads(threads)
    task = registry.get_task(spec.task.task)
    method = _method(spec.method)
    plugins.preflight(method, settings.backbone)
    config = {**spec.to_json(), "method": {**spec.method, **registry.provenance(method)}}
    if task.needs_data and data_path is None:
        raise ValueError(f"task {task.name!r} reads prepared data: pass --data (see `petl-bench data`)")
    resume = rundir.resume_point(out, spec.digest)  # before any model is built: a foreign folder stops here

    set_seed(seed)
    model = task.build_model(settings, spec.init, seed)
    method, sizes, formula = _solve_budget(method, spec.budget, model)
    trainable_names = plugins.guarded(method, "apply", lambda: method.apply(model))
    task.after_apply(model, settings, method)
    trainable_names = [n for n, p in model.named_parameters() if p.requires_grad]
    counts = count_params(model)
    conventions = task.count_conventions(model, settings)  # e.g. Lu et al.'s: only the position rows read
    log.info("%s: %d trainable of %d (%.4f%% of the backbone)", method.name, counts["trainable"], counts["total"],
             100 * counts["trainable"] / counts["backbone"])

    settings, reserved = reserve_prompt_positions(settings, method, model)
    with rundir.data_lock(data_path):
        data = task.data(settings, seed, data_path)
    has_length = hasattr(data.train, "__len__")
    args = _training_args(spec.train, out, seed, threads, has_length, _hf_class(task.training_args_class),
                          task.training_kwargs(spec.train))
    watch, events = DivergenceWatch(), LogEvents()

    def metrics(pred: Any) -> dict[str, float]:
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return (data.metrics or task.compute_metrics)(logits, pred.label_ids)

    trainer = _hf_class(task.trainer)(model=model, args=args, train_dataset=data.train, eval_dataset=data.eval,
                           data_collator=data.collate, compute_metrics=metrics,
                           callbacks=[watch, events, rundir.IdentityStamp(out, spec.digest)])
    if resume:
        log.info("resuming from %s", resume)
    t_train, cpu_before_train = time.perf_counter(), time.process_time()  # CPU time since the process started
    result = (_restore_finished(trainer, resume) if resume and rundir.finished(resume)
              else trainer.train(resume_from_checkpoint=str(resume) if resume else None))
    t_eval = time.perf_counter()
    if watch.diverged_at is None and result.training_loss is not None and not math.isfinite(result.training_loss):
        watch.diverged_at = result.global_step  # diverged after the last logged step
    status = "diverged" if watch.diverged_at is not None else "ok"
    curve = [h for h in trainer.state.log_history if any(k.startswith("eval_") for k in h)]
    events.final = True
    final = task.evaluate(trainer, data, settings) if status == "ok" else {}
    t_record, cpu_record = time.perf_counter(), time.process_time()
    record = Record(**{
        "key": spec.key,
        "digest": spec.digest,
        "variant": spec.variant,
        "label": spec.label,
        "backbone": spec.trained_backbone,
        "paper": {**spec.paper, "sizes": sizes},
        "status": status,
        "diverged_at_step": watch.diverged_at,
        "metrics": final,
        "primary_metric": task.metric,
        "paper_metric": task.paper_metric or task.metric,
        "protocol": {**task.protocol(settings), **({"prompt_positions": reserved} if reserved else {})},
        "eval_split": data.eval_name,
        "config": config,
        "method": {**method.to_dict(), "sizes": sizes, **registry.provenance(method),
                   **({"override": True} if spec.method.get("override") else {})},
        "params": {**counts, "trainable_pct": 100 * counts["trainable"] / counts["backbone"],
                   "denominator": "pretrained backbone (task head and new tensors excluded)",
                   "formula": formula, "trainable_tensors": trainable_names, **conventions},
        # the mean loss over the steps this process trained (a resumed run's count is the steps after its resume)
        "train": {"steps": result.global_step, "train_loss": result.training_loss,
                  "train_loss_steps": result.global_step - (rundir.step_of(resume) if resume else 0),
                  "resumed_from": str(resume) if resume else None, "optimizer": args.optim, "bf16": args.bf16},
        "curve": curve,
        "convergence": convergence(curve, f"eval_{task.metric}", settings.options.get("converge_at") or ()),
        "wall_time_s": time.perf_counter() - t0,
        "peak_memory_mb": _peak_memory_mb(),
        "determinism": determinism.report(determinism.current(bf16=args.bf16)),
        "provenance": provenance(seed, started),
        "delta": "delta.safetensors",
        "log": "run.log",
    })
    times = timing(startup, t_train - t0, t_eval - t_train, curve, t_record - t_eval, time.perf_counter() - t_record,
                   cpu_before_train + time.process_time() - cpu_record)
    record = dataclasses.replace(record, timing=times)  # the file's own write (milliseconds) comes after
    if spec.save_backbone:  # a pretraining run (Lu et al.'s Bit baseline) hands its backbone on
        from benchmark.backbones.anatomy import core_of

        core_of(model).save_pretrained(spec.save_backbone)
    from benchmark.methods.delta import save_delta

    save_delta(model, out / "delta.safetensors", method)  # before the record: a record means its delta exists
    write_record(record, out / "record.json", overwrite=True)
    rundir.tidy(out, keep_checkpoints)
    return record.to_json()


def _restore_finished(trainer: Any, checkpoint: Path) -> Any:
    """A run killed after its final checkpoint: restore that state (weights, log history, best checkpoint)
    instead of training on. The Trainer, resumed at max_steps, would train one more step and change the result."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / "trainer_state.json"))
    if trainer.args.load_best_model_at_end and trainer.state.best_model_checkpoint is not None:
        trainer._load_best_model()
    log.info("restored the finished run from %s (step %d); no further training", checkpoint,
             trainer.state.global_step)
    return TrainOutput(trainer.state.global_step, None, {})  # no step trained here, so no training loss


def convergence(curve: list[dict[str, Any]], key: str, thresholds: Any) -> dict[str, Any]:
    """Steps to convergence from the eval curve (Lu et al.'s convergence table): the first evaluated step at
    or above each absolute threshold, and the first within 1% of the run's own best (None: never reached)."""
    points = [(h["step"], h[key]) for h in curve if key in h]
    if not points:
        return {"metric": key, "best": None, "steps_to": {}, "steps_to_99pct_of_best": None}
    best = max(v for _, v in points)

    def first(level: float) -> int | None:
        return next((step for step, v in points if v >= level), None)

    return {"metric": key, "best": best, "steps_to": {str(t): first(t) for t in thresholds},
            "steps_to_99pct_of_best": first(0.99 * best)}


def input_positions(config: Any) -> int | None:
    """How many input positions the backbone's learned position table holds (None: relative positions, T5).
    RoBERTa-style tables start after the padding index, so 514 rows hold 512 tokens."""
    n = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    if n is None or getattr(config, "model_type", "") in ("t5", "mt5"):
        return None
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "longformer"):
        n -= (config.pad_token_id or 0) + 1
    return int(n)


INPUT_LENGTH_KEYS = ("max_source_length", "max_length")  # seq2seq: the encoder's input (max_length is generation's)


def reserve_prompt_positions(settings: TaskSettings, method: Method, model: Any
                             ) -> tuple[TaskSettings, dict[str, int] | None]:
    """Prompt tuning's l vectors take l rows of the position table: cut the task's input length so that l + input
    fits (RoBERTa, l=200: 312 input tokens, not 512), and say so for the record. Other methods: unchanged."""
    l = sum(m.l or 0 for m in method.mods if m.form == "prompt")
    opts = settings.options
    key = next((k for k in INPUT_LENGTH_KEYS if k in opts), None)
    limit = input_positions(model.config) if l and key else None
    if limit is None:
        return settings, None
    if l >= limit:
        raise ConfigError(f"prompt l={l} takes all {limit} positions of {settings.backbone}: no room for input; "
                          f"choose l below {limit}")
    configured = int(opts[key])
    cut = min(configured, limit - l)
    if cut < configured:
        log.info("prompt l=%d: inputs truncated to %d tokens (%s %d; %d positions)", l, cut, key, configured, limit)
    reserved = {"prompt_tokens": l, "positions": limit, "option": key, "configured": configured, "input_length": cut}
    return dataclasses.replace(settings, options={**opts, key: cut}), reserved


def _solve_budget(method: Method, budget: str, model: Any) -> tuple[Method, dict[str, int], int]:
    """Apply the budget to the method; shares are solved against the backbone's size with the paper formula."""
    from benchmark.backbones.anatomy import core_of

    total = sum(p.numel() for p in core_of(model).parameters())
    method, sizes = solve(method, budget, lambda m: m.formula(model), total)
    return method, sizes, method.formula(model)


class RunLog(logging.FileHandler):
    """The run's log file. On a full disk each failed line would print a traceback to stderr; the run's own error
    says it in one line instead."""

    def handleError(self, record: logging.LogRecord) -> None:
        if not disk_full(sys.exc_info()[1]):
            super().handleError(record)


def setup_logging(log_file: Path | None) -> None:
    """One line per event, once: to the run's log file when given, and to stderr only when stderr is a terminal
    that is not that file (Snakemake appends stderr to the same run.log, which used to double every line).
    Progress bars (transformers' weight loading, the Trainer's) show on a terminal only."""
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handlers.append(RunLog(log_file))
    if log_file is None or interactive():
        handlers.append(logging.StreamHandler(sys.stderr))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        handlers=handlers, force=True)
    if not interactive():
        import os

        for var in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS", "TQDM_DISABLE"):
            os.environ.setdefault(var, "1")  # read when those libraries are imported
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if sys.modules.get("datasets") is not None:  # already imported: its bars (Map, Generating split) need the call
            sys.modules["datasets"].disable_progress_bars()

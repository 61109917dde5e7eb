"""Shared plumbing of the generation tasks (summarization, translation): Hub/local data, batching,
decoder inputs, token-count batches, beam search and the final generated evaluation.

A task family subclasses `Seq2SeqTask`, names its Hub dataset and columns, and sets its paper
recipe, generation options and metrics. Checkpoint selection follows the reference code: the
Trainer evaluates a validation subset (the first `select_size` pairs) every `eval_steps` and
keeps the best checkpoint by `select_metric`; the final numbers come from generating on the
whole report split (test) with that checkpoint.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Callable, ClassVar

from torch import nn

from benchmark.spec import TaskSettings, digest
from benchmark.tasks.base import JsonlTask, TaskData

GENERATION_OPTIONS = ("num_beams", "min_length", "max_length", "no_repeat_ngram_size")


class Seq2SeqTask(JsonlTask):
    """A generation task: subclasses set the Hub dataset, `pair()`, the recipe, options and `score()`."""

    paper = "he2022"
    needs_data = True
    trainer = "benchmark.tasks.generation:GenerationTrainer"
    training_args_class = "benchmark.tasks.generation:TokenBatchArguments"
    hub_id: ClassVar[str]
    hub_config: ClassVar[str | None] = None
    splits: ClassVar[tuple[str, ...]] = ("train", "validation", "test")
    columns: ClassVar[tuple[str, ...]]  # what a local jsonl row must hold (the Hub's columns)
    generate_during_selection: ClassVar[bool] = True  # False when checkpoints are selected by loss
    model_config: ClassVar[dict[str, Any]] = {}  # architecture settings of the recipe (dropout …)
    base_options: ClassVar[dict[str, Any]] = {
        "train_size": None,  # first-N training pairs after a seeded shuffle (offline presets, tests)
        "select_split": "validation", "select_size": 1600,  # reference code: first 1600 validation pairs
        "report_split": "test", "report_size": None,  # None = the whole split (the paper's numbers)
    }

    # --- subclass hooks ------------------------------------------------------------------------------
    def pair(self, row: dict[str, Any], opts: dict[str, Any]) -> tuple[str, str]:
        """(source text, target text) of one row."""
        raise NotImplementedError

    def score(self, predictions: list[str], references: list[str], opts: dict[str, Any]) -> dict[str, float]:
        raise NotImplementedError

    def tokenizer(self, settings: TaskSettings) -> Any:
        """The backbone's tokenizer, loaded once per process (the model and the data both ask; mBART's takes seconds)."""
        return _tokenizer(settings.backbone, settings.backbone_path)

    def encode(self, tok: Any, sources: list[str], targets: list[str], opts: dict[str, Any]) -> dict[str, list]:
        """Token ids of sources and targets with the backbone's special tokens, truncated to the paper's lengths."""
        enc = tok(sources, truncation=True, max_length=opts["max_source_length"])
        enc["labels"] = tok(text_target=targets, truncation=True, max_length=opts["max_target_length"])["input_ids"]
        return {"input_ids": enc["input_ids"], "labels": enc["labels"]}

    def special_tokens(self, tok: Any, family: str, opts: dict[str, Any]) -> dict[str, int | None]:
        """Config ids that must agree with the tokenizer (tiny backbones borrow a BERT tokenizer)."""
        bos = tok.bos_token_id if tok.bos_token_id is not None else tok.cls_token_id
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        return {"pad_token_id": tok.pad_token_id, "bos_token_id": bos, "eos_token_id": eos,
                "decoder_start_token_id": eos, "forced_bos_token_id": bos}

    # --- Task API --------------------------------------------------------------------------------------
    def build_model(self, settings: TaskSettings, init: str, seed: int) -> nn.Module:
        from benchmark.backbones.registry import build_model, get_backbone

        tok = self.tokenizer(settings)
        spec = get_backbone(settings.backbone)
        ids = self.special_tokens(tok, spec.family, settings.options)
        kwargs = {k: v for k, v in ids.items() if k != "forced_bos_token_id"}  # a generation-only setting
        vocab = spec.config(settings.backbone_path).vocab_size
        if len(tok) > vocab:  # codes added to a borrowed tokenizer (tiny backbones) need rows
            kwargs["vocab_size"] = len(tok)
        model = build_model(settings.backbone, "seq2seq", init=init, path=settings.backbone_path,
                            seed=seed, **self.model_config, **kwargs)
        opts = settings.options
        gen = model.generation_config
        for key, value in ids.items():
            setattr(gen, key, value)
        for key in GENERATION_OPTIONS:
            setattr(gen, key, opts[key])
        gen.early_stopping = True  # fairseq/BART beam search stops when num_beams hypotheses are finished
        return model

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        import datasets

        from benchmark.backbones.registry import get_backbone
        from benchmark.tasks.generation import Seq2SeqCollator, shift_for

        assert data_path is not None, f"task {self.name} reads its prepared data folder"
        opts = settings.options
        tok = self.tokenizer(settings)
        family = get_backbone(settings.backbone).family
        ids = self.special_tokens(tok, family, opts)
        names = {"train", opts["select_split"], opts["report_split"]}
        ds = datasets.load_dataset("json", data_files={s: str(data_path / f"{s}.jsonl") for s in names})
        train = ds["train"]
        if opts.get("train_size"):
            train = train.shuffle(seed=seed).select(range(min(opts["train_size"], len(train))))
        select = _first(ds[opts["select_split"]], opts["select_size"])
        report = _first(ds[opts["report_split"]], opts["report_size"])

        def encode(batch: dict[str, list]) -> dict[str, list]:
            rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
            sources, targets = zip(*(self.pair(r, opts) for r in rows)) if rows else ((), ())
            return self.encode(tok, list(sources), list(targets), opts)

        def prep(split: datasets.Dataset) -> datasets.Dataset:
            # in memory, under a fingerprint of our own: datasets would otherwise hash `encode` with the tokenizer
            # inside it (3.4 s per split for mBART's 250k-piece vocabulary, found by the rehearsal) and cache it on disk
            label = f"{split._fingerprint}-{self.name}-{digest(opts)[:12]}"
            return split.map(encode, batched=True, remove_columns=split.column_names, keep_in_memory=True,
                             new_fingerprint=label)

        references = [self.pair(r, opts)[1] for r in report]
        shift = shift_for(family, ids["pad_token_id"], ids["decoder_start_token_id"])
        collate = Seq2SeqCollator(tok.pad_token_id, shift)
        return TaskData(prep(train), prep(select), collate, eval_name=opts["report_split"],
                        extras={"report": prep(report), "references": references, "tokenizer": tok},
                        metrics=self._metrics(tok, opts))

    def _metrics(self, tok: Any, opts: dict[str, Any]) -> Callable[[Any, Any], dict[str, float]]:
        from benchmark.tasks.generation import decode

        def metrics(predictions: Any, labels: Any) -> dict[str, float]:
            return self.score(decode(tok, predictions), decode(tok, labels), opts)

        return metrics

    def training_kwargs(self, train: dict[str, Any]) -> dict[str, Any]:
        """Seq2seq arguments: generation during selection only where the selection metric needs it."""
        return {"predict_with_generate": self.generate_during_selection,
                "prediction_loss_only": not self.generate_during_selection,
                "max_tokens": train.get("max_tokens")}

    def evaluate(self, trainer: Any, data: TaskData, settings: TaskSettings) -> dict[str, float]:
        """Beam-search the whole report split with the selected checkpoint; score against the raw references
        (not the truncated, re-decoded labels); keep the generations next to the record."""
        from benchmark.tasks.generation import decode, generating

        with generating(trainer):
            out = trainer.predict(data.extras["report"], metric_key_prefix="test")
        predictions = decode(data.extras["tokenizer"], out.predictions)
        references = data.extras["references"]
        metrics = self.score(predictions, references, settings.options)
        metrics["loss"] = float(out.metrics.get("test_loss", float("nan")))
        run_dir = Path(trainer.args.output_dir).parent
        with open(run_dir / f"{data.eval_name}_generations.jsonl", "w") as f:
            for p, r in zip(predictions, references):
                f.write(json.dumps({"prediction": p, "reference": r}, ensure_ascii=False) + "\n")
        return metrics


@functools.lru_cache(maxsize=4)
def _tokenizer(backbone: str, path: str | None) -> Any:
    from benchmark.backbones.registry import load_tokenizer

    return load_tokenizer(backbone, path)


def _first(split: Any, n: int | None) -> Any:
    return split.select(range(min(n, len(split)))) if n else split

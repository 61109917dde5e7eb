# Backbones that other runs start from. Lu et al.'s "Bit" baseline: a transformer trained (from random
# init, every weight) on Bit Memory, saved, then frozen and transferred by methods with init `bit`.
# The checkpoint is an input of those runs, so Snakemake pretrains once per backbone, before them.
# The pretraining task instance is `bit-pretrain` when the config defines it, else bit-memory's defaults.


def bit_checkpoint(backbone: str) -> str:
    return f"{RESOURCES}/backbones/bit-memory/{backbone}"


def bit_pretrain_spec(backbone: str, threads: int, out: str) -> str:
    task = "bit-pretrain" if "bit-pretrain" in CFG.raw["tasks"] else "bit-memory"
    spec = CFG.spec(Run(task, "full", "default", 0))
    spec["task"]["backbone"] = backbone
    spec["method"]["init"] = "random"
    return json.dumps({**spec, "threads": threads, "save_backbone": out})


BIT_METHODS = sorted({r.method for r in RUNS if CFG.method(r.method).init == "bit"})


rule pretrain_bit:
    output:
        directory(bit_checkpoint("{backbone}")),
    log:
        f"{RESULTS}/logs/pretrain/bit-memory-{{backbone}}.log",
    threads: CFG.raw["threads"]
    resources:
        gpu=CFG.raw["gpus"],
    params:
        spec=lambda w, threads, output: bit_pretrain_spec(w.backbone, threads, output[0]),
        run=f"{RESULTS}/pretrain/bit-memory/{{backbone}}",
    shell:
        "petl-bench train --task bit-memory --spec {params.spec:q} --out {params.run} --log {log} --force "
        "> /dev/null 2>> {log}"


if BIT_METHODS:

    use rule train as train_from_bit with:
        input:
            data=train_inputs,
            backbone=lambda w: bit_checkpoint(CFG.task_settings(w.task)["backbone"]),
        output:
            f"{RESULTS}/runs/{{task}}/{{method,{'|'.join(BIT_METHODS)}}}/{{budget}}/{{seed}}/record.json",
        params:
            spec=lambda w, threads, input: json.dumps({**(s := CFG.spec(run_of(w))), "threads": threads,
                                                       "task": {**s["task"], "backbone_path": input.backbone}}),
            out=lambda w, output: os.path.dirname(output[0]),
            data=lambda w, input: f"--data {input.data}" if input.data else "",
            gpus=gpu_ids_arg(),

    ruleorder: train_from_bit > train

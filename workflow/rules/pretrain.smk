# Backbones that other runs start from. Lu et al.'s "Bit" baseline: a transformer trained (from random
# init, every weight) on Bit Memory, saved, then frozen and transferred by methods with init `bit`.
# The checkpoint is an input of those runs, so Snakemake pretrains once per backbone, before them. Its folder
# holds the pretraining spec's digest, and its path is part of the identity of the runs that start from it, so a
# change to the pretraining reruns the pretraining and every run built on it.
# The pretraining task instance is `bit-pretrain` when the config defines it, else bit-memory's defaults.


rule pretrain_bit:
    input:
        lambda w: standins(bit_pretrain_spec(w.backbone)),  # a rehearsal pretrains the stand-in
    output:
        directory(f"{RESOURCES}/backbones/bit-memory/{{backbone}}/{{variant}}"),
    log:
        f"{RESULTS}/logs/pretrain/bit-memory-{{backbone}}-{{variant}}.log",
    threads: CFG.raw["threads"]
    resources:  # the Bit Memory family's job resources
        gpu=family_resource("bit-memory", "gpus"),
        mem_mb=lambda w, attempt: family_resource("bit-memory", "mem_mb") * attempt,
        runtime=lambda w, attempt: family_resource("bit-memory", "runtime") * attempt,
        gpu_model=family_resource("bit-memory", "gpu_model") or "",
    params:
        spec=lambda w, output: job_spec(bit_pretrain_spec(w.backbone).with_(save_backbone=output[0])),
        run=f"{RESULTS}/pretrain/bit-memory/{{backbone}}/{{variant}}",
    shell:
        "petl-bench train --task bit-memory --spec {params.spec:q} --threads {threads} --out {params.run:q} "
        "--log {log:q} --force > /dev/null 2>> {log:q}"

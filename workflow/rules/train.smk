# One training job per (task, method, budget, seed). The resolved spec travels as JSON, so a
# change to the config that affects a run re-triggers it (Snakemake's params rerun trigger).


def train_inputs(w):
    return [data_dir(w.task)] if needs_data(w.task) else []


rule train:
    input:
        train_inputs,
    output:
        f"{RESULTS}/runs/{{task}}/{{method}}/{{budget}}/{{seed}}/record.json",
    log:
        f"{RESULTS}/runs/{{task}}/{{method}}/{{budget}}/{{seed}}/run.log",
    threads: CFG.raw["threads"]
    resources:
        gpu=CFG.raw["gpus"],
    params:
        spec=lambda w, threads: json.dumps({**CFG.spec(run_of(w)), "threads": threads}),
        out=lambda w, output: os.path.dirname(output[0]),
        data=lambda w, input: f"--data {input[0]}" if input else "",
    shell:
        "petl-bench train --task {wildcards.task} --spec {params.spec:q} --out {params.out} "
        "--log {log} {params.data} > /dev/null 2>> {log}"

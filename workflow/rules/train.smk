# One training job per (task, method, budget, seed). The resolved spec travels as JSON, so a
# change to the config that affects a run re-triggers it (Snakemake's params rerun trigger).
# Memory and runtime grow with each retry (`attempt`); GPU ids are claimed per job (benchmark.devices).
# run.log gets one line per event (progress bars only on a terminal); a failure's one-line reason is also
# echoed to the console.

JOB_DEFAULTS = {"mem_mb": 16000, "runtime": 720}


def train_inputs(w):
    return [data_dir(w.task)] if needs_data(w.task) else []


def job_resource(w, key: str):
    table = CFG.raw["job_resources"]
    own = table.get(CFG.task_family(w.task), {})
    return own.get(key, table.get("default", {}).get(key, JOB_DEFAULTS.get(key)))


def gpu_ids_arg() -> str:
    ids = CFG.raw["gpu_ids"]
    return f"--gpu-ids {','.join(map(str, ids))} --resources {RESOURCES}" if ids else ""


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
        mem_mb=lambda w, attempt: job_resource(w, "mem_mb") * attempt,
        runtime=lambda w, attempt: job_resource(w, "runtime") * attempt,
        gpu_model=lambda w: job_resource(w, "gpu_model") or "",
    params:
        spec=lambda w, threads: json.dumps({**CFG.spec(run_of(w)), "threads": threads}),
        out=lambda w, output: os.path.dirname(output[0]),
        data=lambda w, input: f"--data {input[0]}" if input else "",
        gpus=gpu_ids_arg(),
    shell:
        "petl-bench train --task {wildcards.task} --spec {params.spec:q} --out {params.out} "
        "--log {log} {params.data} {params.gpus} > /dev/null 2>> {log} "
        # a failed job's reason, one line, on the console (the run's last log line: the CLI writes it so)
        "|| {{ echo \"train {wildcards.task}/{wildcards.method}/{wildcards.budget}/{wildcards.seed}: $(tail -n 1 {log})\" >&2; exit 1; }}"

# One training job per run. Its output path carries the run's identity digest (see common.smk), so Snakemake's
# own DAG reruns a run whose resolved spec changed, and only that one. Memory and runtime grow with each retry
# (`attempt`); GPU ids are claimed per job (benchmark.devices). run.log gets one line per event (progress bars
# only on a terminal); a failure's one-line reason is also echoed to the console.

JOB_DEFAULTS = {"mem_mb": 16000, "runtime": 720}


def train_inputs(w):
    spec = spec_of(w)
    data = [data_dir(w.task)] if needs_data(w.task) else []
    return data + ([spec.task.backbone_path] if spec.method.get("init") == "bit" else []) + standins(spec)


def family_resource(family: str, key: str):
    """A job's cluster resource from config `job_resources`: the task family's entry, else `default`, else the
    built-in default (GPUs: the config's `gpus`)."""
    table = CFG.raw["job_resources"]
    own = table.get(family, {})
    return own.get(key, table.get("default", {}).get(key, {**JOB_DEFAULTS, "gpus": CFG.raw["gpus"]}.get(key)))


def job_resource(w, key: str):
    return family_resource(CFG.task_family(w.task), key)


def gpu_ids_arg() -> str:
    ids = CFG.raw["gpu_ids"]
    return f"--gpu-ids {Q(','.join(map(str, ids)))} --resources {Q(RESOURCES)}" if ids else ""


def job_spec(spec: RunSpec) -> str:
    """The spec as the job receives it. Threads travel as --threads, so a change of threads (not identity) does not
    trip Snakemake's params trigger."""
    return json.dumps({k: v for k, v in spec.to_json().items() if k != "threads"})


def data_arg(w) -> str:
    return f"--data {Q(data_dir(w.task))}" if needs_data(w.task) else ""


rule train:
    input:
        train_inputs,
    output:
        f"{RESULTS}/runs/{{task}}/{{method}}/{{budget}}/{{variant}}/{{seed}}/record.json",
    log:
        f"{RESULTS}/runs/{{task}}/{{method}}/{{budget}}/{{variant}}/{{seed}}/run.log",
    threads: CFG.raw["threads"]
    # Longest first: a run that trains the whole backbone costs 2–5 times a parameter-efficient one, and started
    # last it would leave the other cores idle at the end of the grid.
    priority: lambda w: 1 if spec_of(w).method.get("train_all") else 0
    resources:
        gpu=lambda w: job_resource(w, "gpus"),
        mem_mb=lambda w, attempt: job_resource(w, "mem_mb") * attempt,
        runtime=lambda w, attempt: job_resource(w, "runtime") * attempt,
        gpu_model=lambda w: job_resource(w, "gpu_model") or "",
    params:
        spec=lambda w: job_spec(spec_of(w)),
        out=lambda w, output: os.path.dirname(output[0]),
        data=data_arg,
        gpus=gpu_ids_arg(),
        keep="--keep-checkpoints" if CFG.raw["keep_checkpoints"] else "",
    shell:
        "petl-bench train --task {wildcards.task:q} --spec {params.spec:q} --threads {threads} --out {params.out:q} "
        "--log {log:q} {params.data} {params.gpus} {params.keep} > /dev/null 2>> {log:q} "
        # a failed job's reason, one line, on the console (the run's last log line: the CLI writes it so)
        "|| {{ echo \"train {wildcards.task}/{wildcards.method}/{wildcards.budget}/{wildcards.variant}/"
        "{wildcards.seed}: $(tail -n 1 {log:q})\" >&2; exit 1; }}"

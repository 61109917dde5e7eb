# One folder per task instance: a Hub download, or a copy of a local folder (`data_dir`).
# Generated tasks (bit tasks, ListOps) need no data rule.


rule data:
    output:
        directory(f"{RESOURCES}/data/{{task}}"),
    log:
        f"{RESULTS}/logs/data/{{task}}.log",
    params:
        spec=lambda w: json.dumps(CFG.task_settings(w.task)),
    shell:
        "petl-bench data --task {wildcards.task} --spec {params.spec:q} --out {output} > {log} 2>&1"

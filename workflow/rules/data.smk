# One folder per task family and data settings (resources/data/<family>/<data digest>): a Hub download, or a copy
# of a local folder (`data_dir`). A change to the data settings prepares a new folder; training settings do not.
# Generated tasks (bit tasks, ListOps) need no data rule.


rule data:
    output:
        directory(f"{RESOURCES}/data/{{task}}/{{data_digest}}"),
    log:
        f"{RESULTS}/logs/data/{{task}}-{{data_digest}}.log",
    params:
        # the data settings only: a training change must not refetch the data
        spec=lambda w: json.dumps(data_settings(w.task, w.data_digest)),
    shell:
        "petl-bench data --task {wildcards.task:q} --spec {params.spec:q} --out {output:q} > {log:q} 2>&1"

# Records → database (idempotent upsert) → tables and static leaderboard.


rule plan:
    output:
        f"{RESULTS}/planned.json",
    params:
        runs=[r.path for r in RUNS],
    run:
        with open(output[0], "w") as f:
            json.dump(params.runs, f, indent=0)


rule ingest:
    input:
        [record_path(r) for r in RUNS],
    output:
        f"{RESULTS}/bench.sqlite",
    log:
        f"{RESULTS}/logs/ingest.log",
    shell:
        "petl-bench ingest --runs {RESULTS}/runs --db {output} > {log} 2>&1"


rule report:
    input:
        db=f"{RESULTS}/bench.sqlite",
        planned=f"{RESULTS}/planned.json",
    output:
        f"{RESULTS}/leaderboard/index.html",
    log:
        f"{RESULTS}/logs/report.log",
    params:
        out=f"{RESULTS}/leaderboard",
    shell:
        "petl-bench report --db {input.db} --planned {input.planned} --out {params.out} > {log} 2>&1"

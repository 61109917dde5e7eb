# Records → database (idempotent upsert) → static leaderboard.


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
        f"{RESULTS}/bench.sqlite",
    output:
        f"{RESULTS}/leaderboard/index.html",
    log:
        f"{RESULTS}/logs/report.log",
    params:
        out=f"{RESULTS}/leaderboard",
    shell:
        "petl-bench report --db {input} --out {params.out} > {log} 2>&1"

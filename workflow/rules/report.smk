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
        # `snakemake --report report.html` carries the whole site (index page first), the tables and the plots
        site=report(directory(f"{RESULTS}/leaderboard"), htmlindex="index.html",
                    caption="../report/leaderboard.rst", category="Leaderboard"),
        tables=report(directory(f"{RESULTS}/tables"), patterns=["{table}.md"],
                      caption="../report/tables.rst", category="Paper tables"),
        plots=report(directory(f"{RESULTS}/plots"), patterns=["{plot}.svg"],
                     caption="../report/plots.rst", category="Plots"),
    log:
        f"{RESULTS}/logs/report.log",
    shell:
        "petl-bench report --db {input.db} --planned {input.planned} --out {output.site} "
        "--tables {output.tables} --plots {output.plots} > {log} 2>&1"

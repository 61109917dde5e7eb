# Records → database (mirrors exactly this grid's records) → tables and static leaderboard.
# Every path reaches the shell quoted (Q = shlex.quote, or Snakemake's :q).


rule plan:
    output:
        f"{RESULTS}/planned.json",
    params:
        runs=[{**s.key, "variant": s.variant, "path": s.path} for s in SPECS.values()],
    run:
        with open(output[0], "w") as f:
            json.dump(params.runs, f, indent=0)


rule ingest:
    input:
        records=[record_path(s) for s in SPECS.values()],
        planned=f"{RESULTS}/planned.json",
    output:
        f"{RESULTS}/bench.sqlite",
    log:
        f"{RESULTS}/logs/ingest.log",
    params:
        runs=f"{RESULTS}/runs",
    shell:
        "petl-bench ingest --runs {params.runs:q} --planned {input.planned:q} --db {output:q} > {log:q} 2>&1"


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
        "petl-bench report --db {input.db:q} --planned {input.planned:q} --out {output.site:q} "
        "--tables {output.tables:q} --plots {output.plots:q} > {log:q} 2>&1"

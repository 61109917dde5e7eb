# petl-bench: task × method × budget × seed → run records → SQLite → tables and a static leaderboard.
#   snakemake --cores all                                  the paper grid (GPUs, Hub access)
#   snakemake --cores all --configfile config/mini.yaml    the offline CPU preset
# All logic lives in the `petl-bench` command and its Python packages; rules stay thin.
from benchmark.config import load_config

if not workflow.overwrite_configfiles:
    configfile: "config/config.yaml"

CFG = load_config(config)  # validates against benchmark/schemas/config.schema.yaml; errors name the key

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/leaderboard",


# With --keep-going a failed run blocks the ingest rule, but the leaderboard must still show what
# finished (and the failure, from its failed.json): rebuild it over whatever records exist.
onerror:
    shell(
        f"mkdir -p {RESULTS}/logs && petl-bench ingest --runs {RESULTS}/runs --db {RESULTS}/bench.sqlite "
        f"> {RESULTS}/logs/ingest.log 2>&1 && "
        f"petl-bench report --db {RESULTS}/bench.sqlite --out {RESULTS}/leaderboard "
        f"$(test -f {RESULTS}/planned.json && echo --planned {RESULTS}/planned.json) > {RESULTS}/logs/report.log 2>&1"
        " || echo 'petl-bench: could not rebuild the leaderboard after the failure; see the logs above'"
    )

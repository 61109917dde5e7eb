# petl-bench: task × method × budget × seed → run records → SQLite → tables and a static leaderboard.
#   snakemake --cores all                                  the paper grid (GPUs, Hub access)
#   snakemake --cores all --configfile config/mini.yaml    the offline CPU preset
# All logic lives in the `petl-bench` command and its Python packages; rules stay thin.
from benchmark.config import load_config

if not workflow.overwrite_configfiles:
    configfile: "config/config.yaml"

CFG = load_config(config)  # validates against workflow/schemas/config.schema.yaml; errors name the key


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        f"{RESULTS}/leaderboard/index.html",

# petl-bench: task × method × budget × seed → run records → SQLite → tables and a static leaderboard.
#   snakemake --cores all                                  the paper grid (GPUs, Hub access)
#   snakemake --cores all --configfile config/mini.yaml    the offline CPU preset
#   snakemake --cores all --config rehearsal=true          every job of the paper grid in miniature, on a CPU
# All logic lives in the `petl-bench` command and its Python packages; rules stay thin.
from benchmark.config import load_config

if not workflow.overwrite_configfiles:
    configfile: "config/config.yaml"

# `--config rehearsal=true` reaches the config as the text "true": the boolean switches are read as YAML reads them
for _switch in ("rehearsal", "rehearsal_sample", "keep_checkpoints", "warm_start"):
    if str(config.get(_switch)).lower() in ("true", "false"):
        config[_switch] = str(config[_switch]).lower() == "true"

# Validates against benchmark/schemas/config.schema.yaml (errors name the key) and checks every name; the config
# file's stem is the default results root (results/<stem>), so two configs never share records.
CFG = load_config(config, (workflow.overwrite_configfiles or ["config/config.yaml"])[-1])

report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/pretrain.smk"
include: "workflow/rules/rehearsal.smk"
include: "workflow/rules/report.smk"


# Every record is a target of its own, not only through the leaderboard: after a failure the onerror handler below
# rebuilds the database and leaderboard outside Snakemake, and with those present Snakemake would otherwise call the
# grid up to date and never rerun what failed or was interrupted.
rule all:
    input:
        f"{RESULTS}/leaderboard",
        [record_path(s) for s in SPECS.values()],


# Local CPU runs: one process imports torch and transformers, and every train job forks from it instead of paying
# ~3.5 s of CPU for the imports (benchmark.warmstart). Not on a cluster executor, not with GPUs (CUDA and fork do
# not mix: with `gpu_ids` no server starts, and a server that sees a GPU ends at once); `--config warm_start=false`
# turns it off.
onstart:
    if workflow.local_exec and CFG.raw["warm_start"] and not CFG.raw["gpu_ids"]:
        from pathlib import Path
        from benchmark import warmstart
        warmstart.start(Path(RESULTS) / "logs" / "warm-server.log", CFG.raw["threads"])


# With --keep-going a failed run blocks the ingest rule, but the leaderboard must still show what
# finished (and the failure, from its failed.json): rebuild it over whatever records exist.
onerror:
    import tempfile
    _planned = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump([{**s.key, "variant": s.variant, "path": s.path} for s in SPECS.values()], _planned)
    _planned.close()
    shell(
        f"mkdir -p {Q(RESULTS + '/logs')} && petl-bench ingest --runs {Q(RESULTS + '/runs')} "
        f"--planned {Q(_planned.name)} --db {Q(RESULTS + '/bench.sqlite')} > {Q(RESULTS + '/logs/ingest.log')} 2>&1 && "
        f"petl-bench report --db {Q(RESULTS + '/bench.sqlite')} --out {Q(RESULTS + '/leaderboard')} "
        f"--planned {Q(_planned.name)} > {Q(RESULTS + '/logs/report.log')} 2>&1"
        " || echo 'petl-bench: could not rebuild the leaderboard after the failure; see the logs above'"
    )
    os.unlink(_planned.name)

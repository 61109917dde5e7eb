# A rehearsal's stand-in backbones (config `rehearsal: true`, benchmark/rehearsal.py): each real backbone as a tiny
# random model of the same architecture and limits, written in the Hub layout, which rehearsal runs read through
# their `backbone_path` — the same from_pretrained path as a real run. The folder names the stand-in recipe's version.


rule standin:
    output:
        directory(f"{RESOURCES}/rehearsal/v{{version}}/backbones/{{backbone}}"),
    log:
        f"{RESULTS}/logs/standin/{{backbone}}-v{{version}}.log",
    wildcard_constraints:
        version=r"\d+",
    shell:
        "petl-bench standin --backbone {wildcards.backbone:q} --version {wildcards.version:q} --out {output:q} "
        "> {log:q} 2>&1"

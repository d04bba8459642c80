# mer: MSCNN micro-expression recognition as a DAG of cached, parameter-keyed artifacts.
# Run: snakemake --cores all            (default config: embedded synthetic dataset)
import atexit
import gc

from snakemake.utils import min_version, validate

min_version("9.0")

# Large DAGs are many Python objects: collect less often, and skip them at exit
# (docs/benchmarks.md, "Garbage collection"; benchmarks/bench_scale.py).
gc.set_threshold(50_000, 20, 20)
atexit.register(gc.freeze)


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/card.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/methods.smk"
include: "workflow/rules/elrcn.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/clean.smk"


# Cheap aggregation steps run in the submitting Snakemake, not as cluster jobs: each takes
# seconds, far less than a SLURM job's start-up. (Targets without a shell are local anyway.)
localrules:
    samples,
    preview_synth,
    contact_sheet,
    evaluate,
    summary,
    sweep_summary,
    alpha_plot,
    training_curves,
    report,


rule all:
    input:
        rules.analysis.input,
        f"{DATA_DIR}/report.html",
    default_target: True

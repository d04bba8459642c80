# mer: MSCNN micro-expression recognition as a DAG of cached, parameter-keyed artifacts.
# Run: snakemake --cores all            (default config: embedded synthetic dataset)
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/preprocess.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/lbptop.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    input:
        f"{DATA_DIR}/samples.tsv",
        dataset_previews(),
        f"{MASK_DIR}/contact_sheet.png",
        rules.all_shards.input,
        rules.train_all.input,
        f"{DATA_DIR}/summary.md",
        [f"{DATA_DIR}/evaluation/{key}/training_curves.png" for key in EXPERIMENTS.values()
         if key in TRAIN_RUNS],
    default_target: True

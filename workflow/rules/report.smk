# The default target's contents and the HTML report built from them.


rule analysis:
    """Everything `all` builds except the HTML report (the report's own target list)."""
    input:
        f"{DATA_DIR}/samples.tsv",
        [f"{DATA_DIR}/preview/synthetic_clips.png"] * SYNTHETIC,
        f"{MASK_DIR}/contact_sheet.png",
        f"{DATA_DIR}/card/{DEFAULT_CHAIN['masks']}/card.png",
        rules.all_shards.input,
        rules.train_all.input,
        f"{DATA_DIR}/summary.md",
        [f"{DATA_DIR}/evaluation/{key}/training_curves.png" for key in EXPERIMENTS.values()
         if key in TRAIN_RUNS],


rule report:
    """`snakemake --report` of the analysis, run as a job so that one command gives the report.
    The nested call gets this run's effective config (with any --config/--configfile) and no
    lock: the outer run holds it and the nested one only reads."""
    input:
        rules.analysis.input,
    output:
        f"{DATA_DIR}/report.html",
    params:
        snakefile=workflow.main_snakefile,
        config=lambda wc: json.dumps(config),
    log:
        f"{LOGS}/report.log",
    conda:
        ENV
    shell:
        "trap 'rm -f {output}.config.json' EXIT; printf '%s' {params.config:q} > {output}.config.json;"
        " python -m snakemake analysis --snakefile {params.snakefile:q}"
        " --configfile {output}.config.json --nolock --report {output} > {log} 2>&1"

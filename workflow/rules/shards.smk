# Stage 6, one job per subject: 10x augmented samples at the network input size -> HDF5 shard.


rule shards:
    input:
        table=f"{DATA_DIR}/samples.tsv",
        flow=lambda wc: expand(f"{FLOW_DIR}/{{sample}}.npz", sample=subject_samples(wc)),
        masks=lambda wc: expand(f"{MASK_DIR}/{{sample}}.npz", sample=subject_samples(wc)),
    output:
        f"{SHARD_DIR}/{{subject}}.h5",
    params:
        flow_dir=FLOW_DIR,
        masks_dir=MASK_DIR,
        masks=config["masks"],
        size=config["shards"]["input_size"],
        classes=",".join(DATASET["classes"]),
        provenance=json.dumps(SHARD_PROVENANCE, sort_keys=True, default=str),
    log:
        f"{LOGS}/shards/{SHARD_KEY}/{{subject}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "mer shards {output} --subject {wildcards.subject:q} --samples-tsv {input.table}"
        " --flow-dir {params.flow_dir} --masks-dir {params.masks_dir} --size {params.size}"
        " --threshold {params.masks[threshold]} --normalise {params.masks[normalise]}"
        " --scale-px {params.masks[scale_px]} --classes {params.classes:q}"
        " --params-json {params.provenance:q} > {log} 2>&1"


rule all_shards:
    """Named target: one shard per subject."""
    input:
        lambda wc: expand(f"{SHARD_DIR}/{{subject}}.h5", subject=all_subjects()),

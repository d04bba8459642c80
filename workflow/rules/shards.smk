# Stage 6, one job per subject: 10x augmented samples at the network input size -> HDF5 shard.


rule shards:
    input:
        # The subject's per-sample flow and masks, by their jobs' manifests (preprocess.smk).
        flow=lambda wc: manifest_input("flow", SHARD_RUNS[wc.shard_key]["flow_key"], wc),
        masks=lambda wc: manifest_input("masks", SHARD_RUNS[wc.shard_key]["mask_key"], wc),
    output:
        f"{DATA_DIR}/shards/{{shard_key}}/{{subject}}.h5",
    params:
        # Read from the table: the subject's samples and labels. Those are in params rather than
        # the whole table in input, so that an edited row reruns its own subject's shard only.
        table=f"{DATA_DIR}/samples.tsv",
        labels=lambda wc: json.dumps([[row["sample"], row["label"]] for row in subject_rows(wc)]),
        flow_dir=lambda wc: f"{DATA_DIR}/flow/{SHARD_RUNS[wc.shard_key]['flow_key']}",
        masks_dir=lambda wc: f"{DATA_DIR}/masks/{SHARD_RUNS[wc.shard_key]['mask_key']}",
        masks=lambda wc: SHARD_RUNS[wc.shard_key]["provenance"]["masks"],
        size=lambda wc: SHARD_RUNS[wc.shard_key]["input_size"],
        classes=",".join(DATASET["classes"]),
        provenance=lambda wc: json.dumps(
            SHARD_RUNS[wc.shard_key]["provenance"], sort_keys=True, default=str
        ),
    log:
        f"{LOGS}/shards/{{shard_key}}/{{subject}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        ENV
    shell:
        "mer shards {output} --subject {wildcards.subject:q} --samples-tsv {params.table}"
        " --flow-dir {params.flow_dir} --masks-dir {params.masks_dir} --size {params.size}"
        " --threshold {params.masks[threshold]} --normalise {params.masks[normalise]}"
        " --scale-px {params.masks[scale_px]} --classes {params.classes:q}"
        " --params-json {params.provenance:q} > {log} 2>&1"


rule all_shards:
    """Named target: one shard per subject (default settings)."""
    input:
        lambda wc: shard_files(DEFAULT_CHAIN["shards"]),

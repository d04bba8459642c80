# Stages 3-5, one job per subject and stage: EVM -> onset->apex flow -> flow image, mask,
# masked apex. Each job writes <stage>/<key>/<sample>.npz for every clip of its subject, then its
# declared output, the manifest <stage>/<key>/subjects/<subject>.tsv (common.smk). Output paths
# carry the stage key; the parameters are looked up by it (common.smk).


wildcard_constraints:
    sample=r"[^/]+",
    subject=r"[^/]+",
    evm_key=r"[^/]+",
    flow_key=r"[^/]+",
    mask_key=r"[^/]+",
    shard_key=r"[^/]+",


rule evm:
    input:
        frames=lambda wc: [row["frames_dir"] for row in subject_rows(wc)],
    output:
        manifest("evm", "{evm_key}", "{subject}"),
    params:
        out_dir=lambda wc: f"{DATA_DIR}/evm/{wc.evm_key}",
        clips=evm_clips,
        evm=lambda wc: EVM_RUNS[wc.evm_key],
        options=lambda wc: evm_options(EVM_RUNS[wc.evm_key]),
    log:
        f"{LOGS}/evm/{{evm_key}}/{{subject}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer evm-clips {params.out_dir} --clips-json {params.clips:q} --manifest {output}"
        " --alpha {params.evm[alpha]} --mode {params.evm[mode]}"
        " --filter {params.evm[temporal_filter]} --low-hz {params.evm[low_hz]}"
        " --high-hz {params.evm[high_hz]} --lambda-c {params.evm[lambda_c]}"
        " --threads {threads} {params.options} > {log} 2>&1"


rule flow:
    input:
        lambda wc: manifest_input("evm", FLOW_RUNS[wc.flow_key]["evm_key"], wc),
    output:
        manifest("flow", "{flow_key}", "{subject}"),
    params:
        evm_dir=lambda wc: f"{DATA_DIR}/evm/{FLOW_RUNS[wc.flow_key]['evm_key']}",
        out_dir=lambda wc: f"{DATA_DIR}/flow/{wc.flow_key}",
        samples=lambda wc: ",".join(subject_samples(wc)),
        method=lambda wc: FLOW_RUNS[wc.flow_key]["method"],
        method_params=lambda wc: json.dumps(FLOW_RUNS[wc.flow_key]["params"], sort_keys=True),
    log:
        f"{LOGS}/flow/{{flow_key}}/{{subject}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=30,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer flow-clips {params.evm_dir} {params.out_dir} --samples {params.samples:q}"
        " --manifest {output} --method {params.method}"
        " --params-json {params.method_params:q} --threads {threads} > {log} 2>&1"


rule masks:
    input:
        evm=lambda wc: manifest_input("evm", MASK_RUNS[wc.mask_key]["evm_key"], wc),
        flow=lambda wc: manifest_input("flow", MASK_RUNS[wc.mask_key]["flow_key"], wc),
    output:
        manifest("masks", "{mask_key}", "{subject}"),
    params:
        evm_dir=lambda wc: f"{DATA_DIR}/evm/{MASK_RUNS[wc.mask_key]['evm_key']}",
        flow_dir=lambda wc: f"{DATA_DIR}/flow/{MASK_RUNS[wc.mask_key]['flow_key']}",
        out_dir=lambda wc: f"{DATA_DIR}/masks/{wc.mask_key}",
        masks=lambda wc: MASK_RUNS[wc.mask_key],
        # The previews' captions: sample and label.
        labels=lambda wc: json.dumps(
            {row["sample"]: f"{row['sample']} {row['label']}" for row in subject_rows(wc)}
        ),
    log:
        f"{LOGS}/masks/{{mask_key}}/{{subject}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=15,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer masks-clips {params.evm_dir} {params.flow_dir} {params.out_dir}"
        " --labels-json {params.labels:q} --manifest {output}"
        " --threshold {params.masks[threshold]} --normalise {params.masks[normalise]}"
        " --scale-px {params.masks[scale_px]} > {log} 2>&1"


rule contact_sheet:
    input:
        lambda wc: subject_manifests("masks", wc.mask_key),
    output:
        report(
            f"{DATA_DIR}/masks/{{mask_key}}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Preprocessing",
        ),
    params:
        previews=lambda wc: expand(
            f"{DATA_DIR}/masks/{wc.mask_key}/preview/{{sample}}.png", sample=all_samples()
        ),
    log:
        f"{LOGS}/contact_sheet/{{mask_key}}.log",
    conda:
        ENV
    shell:
        "mer contact-sheet {output} {params.previews:q} > {log} 2>&1"


rule preprocess:
    """Named target: every sample's masks plus the contact sheet (default settings)."""
    input:
        lambda wc: subject_manifests("masks", DEFAULT_CHAIN["masks"]),
        f"{MASK_DIR}/contact_sheet.png",

# Stages 3-5, one job per sample: EVM -> onset->apex flow -> flow image, mask, masked apex.
# Output paths carry the stage key; the parameters are looked up by it (common.smk).


wildcard_constraints:
    sample=r"[^/]+",
    evm_key=r"[^/]+",
    flow_key=r"[^/]+",
    mask_key=r"[^/]+",
    shard_key=r"[^/]+",


rule evm:
    input:
        frames=lambda wc: sample_row(wc)["frames_dir"],
    output:
        f"{DATA_DIR}/evm/{{evm_key}}/{{sample}}.npz",
    params:
        onset=lambda wc: sample_row(wc)["onset"],
        apex=lambda wc: sample_row(wc)["apex"],
        offset=lambda wc: sample_row(wc)["offset"],
        fps=lambda wc: sample_row(wc)["fps"],
        evm=lambda wc: EVM_RUNS[wc.evm_key],
        options=lambda wc: evm_options(EVM_RUNS[wc.evm_key]),
    log:
        f"{LOGS}/evm/{{evm_key}}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer evm {input.frames:q} {output} --onset {params.onset} --apex {params.apex}"
        " --offset {params.offset} --fps {params.fps} --alpha {params.evm[alpha]}"
        " --mode {params.evm[mode]} --filter {params.evm[temporal_filter]}"
        " --low-hz {params.evm[low_hz]} --high-hz {params.evm[high_hz]}"
        " --lambda-c {params.evm[lambda_c]} --threads {threads} {params.options}"
        " > {log} 2>&1"


rule flow:
    input:
        evm=lambda wc: f"{DATA_DIR}/evm/{FLOW_RUNS[wc.flow_key]['evm_key']}/{wc.sample}.npz",
    output:
        f"{DATA_DIR}/flow/{{flow_key}}/{{sample}}.npz",
    params:
        method=lambda wc: FLOW_RUNS[wc.flow_key]["method"],
        method_params=lambda wc: json.dumps(FLOW_RUNS[wc.flow_key]["params"], sort_keys=True),
    log:
        f"{LOGS}/flow/{{flow_key}}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer flow {input.evm} {output} --method {params.method}"
        " --params-json {params.method_params:q} --threads {threads} > {log} 2>&1"


rule masks:
    input:
        evm=lambda wc: f"{DATA_DIR}/evm/{MASK_RUNS[wc.mask_key]['evm_key']}/{wc.sample}.npz",
        flow=lambda wc: f"{DATA_DIR}/flow/{MASK_RUNS[wc.mask_key]['flow_key']}/{wc.sample}.npz",
    output:
        masks=f"{DATA_DIR}/masks/{{mask_key}}/{{sample}}.npz",
        preview=f"{DATA_DIR}/masks/{{mask_key}}/preview/{{sample}}.png",
    params:
        masks=lambda wc: MASK_RUNS[wc.mask_key],
        label=lambda wc: f"{wc.sample} {sample_row(wc)['label']}",
    log:
        f"{LOGS}/masks/{{mask_key}}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer masks {input.evm} {input.flow} {output.masks} --preview {output.preview}"
        " --threshold {params.masks[threshold]} --normalise {params.masks[normalise]}"
        " --scale-px {params.masks[scale_px]} --label {params.label:q} > {log} 2>&1"


rule contact_sheet:
    input:
        lambda wc: expand(
            f"{DATA_DIR}/masks/{wc.mask_key}/preview/{{sample}}.png", sample=all_samples()
        ),
    output:
        report(
            f"{DATA_DIR}/masks/{{mask_key}}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Preprocessing",
        ),
    log:
        f"{LOGS}/contact_sheet/{{mask_key}}.log",
    conda:
        ENV
    shell:
        "mer contact-sheet {output} {input} > {log} 2>&1"


rule preprocess:
    """Named target: every sample's masks plus the contact sheet (default settings)."""
    input:
        lambda wc: expand(f"{MASK_DIR}/{{sample}}.npz", sample=all_samples()),
        f"{MASK_DIR}/contact_sheet.png",

# Stages 3-5, one job per sample: EVM -> onset->apex flow -> flow image, mask, masked apex.


wildcard_constraints:
    sample=r"[^/]+",


rule evm:
    input:
        frames=lambda wc: sample_row(wc).frames_dir,
    output:
        f"{EVM_DIR}/{{sample}}.npz",
    params:
        onset=lambda wc: sample_row(wc).onset,
        apex=lambda wc: sample_row(wc).apex,
        offset=lambda wc: sample_row(wc).offset,
        fps=lambda wc: sample_row(wc).fps,
        size=f"--size {config['preprocess']['size']}" if config["preprocess"]["size"] else "",
        crop=(
            f"--crop-size {CROP['size']} --crop-margin {CROP['margin']}"
            if CROP["enabled"]
            else ""
        ),
        levels=f"--levels {config['evm']['levels']}" if config["evm"]["levels"] else "",
        evm=config["evm"],
    log:
        f"{LOGS}/evm/{EVM_KEY}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        subject_group
    conda:
        ENV
    shell:
        "mer evm {input.frames:q} {output} --onset {params.onset} --apex {params.apex}"
        " --offset {params.offset} --fps {params.fps} --alpha {params.evm[alpha]}"
        " --mode {params.evm[mode]} --filter {params.evm[temporal_filter]}"
        " --low-hz {params.evm[low_hz]} --high-hz {params.evm[high_hz]}"
        " --lambda-c {params.evm[lambda_c]} --threads {threads} {params.levels} {params.size}"
        " {params.crop} > {log} 2>&1"


rule flow:
    input:
        evm=f"{EVM_DIR}/{{sample}}.npz",
    output:
        f"{FLOW_DIR}/{{sample}}.npz",
    params:
        method=config["flow"]["method"],
        method_params=json.dumps(config["flow"]["params"], sort_keys=True),
    log:
        f"{LOGS}/flow/{FLOW_KEY}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        subject_group
    conda:
        ENV
    shell:
        "mer flow {input.evm} {output} --method {params.method}"
        " --params-json {params.method_params:q} --threads {threads} > {log} 2>&1"


rule masks:
    input:
        evm=f"{EVM_DIR}/{{sample}}.npz",
        flow=f"{FLOW_DIR}/{{sample}}.npz",
    output:
        masks=f"{MASK_DIR}/{{sample}}.npz",
        preview=f"{MASK_DIR}/preview/{{sample}}.png",
    params:
        masks=config["masks"],
        label=lambda wc: f"{wc.sample} {sample_row(wc).label}",
    log:
        f"{LOGS}/masks/{MASK_KEY}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    group:
        subject_group
    conda:
        ENV
    shell:
        "mer masks {input.evm} {input.flow} {output.masks} --preview {output.preview}"
        " --threshold {params.masks[threshold]} --normalise {params.masks[normalise]}"
        " --scale-px {params.masks[scale_px]} --label {params.label:q} > {log} 2>&1"


rule contact_sheet:
    input:
        lambda wc: expand(f"{MASK_DIR}/preview/{{sample}}.png", sample=all_samples()),
    output:
        report(
            f"{MASK_DIR}/contact_sheet.png",
            caption="../report/contact_sheet.rst",
            category="Preprocessing",
        ),
    log:
        f"{LOGS}/contact_sheet/{MASK_KEY}.log",
    conda:
        ENV
    shell:
        "mer contact-sheet {output} {input} > {log} 2>&1"


rule preprocess:
    """Named target: every sample's masks plus the contact sheet."""
    input:
        lambda wc: expand(f"{MASK_DIR}/{{sample}}.npz", sample=all_samples()),
        f"{MASK_DIR}/contact_sheet.png",

# Stage 1: dataset -> canonical samples table (+ the synthetic dataset when configured).


rule synth:
    output:
        # The frames and ground truth are written beside these two files, by one atomic rename
        # of the whole folder; they are not declared one by one (thousands of files).
        annotations=ANNOTATIONS if SYNTHETIC else [],
        generator=f"{SYNTH_DIR}/generator.json" if SYNTHETIC else [],
    params:
        out=lambda wildcards, output: os.path.dirname(output.annotations),
        generator=json.dumps(config["synthetic"], sort_keys=True),
    log:
        f"{LOGS}/synth.log",
    threads: 4
    conda:
        ENV
    shell:
        "mer synth {params.out} --params-json {params.generator:q} --workers {threads} > {log} 2>&1"


rule preview_synth:
    input:
        dataset_inputs,
    output:
        report(
            f"{DATA_DIR}/preview/synthetic_clips.png",
            caption="../report/synthetic_preview.rst",
            category="Data",
        ),
    params:
        dataset=lambda wildcards, input: os.path.dirname(input[0]),
    log:
        f"{LOGS}/preview_synth.log",
    conda:
        ENV
    shell:
        "mer preview-synth {params.dataset} {output} > {log} 2>&1"


checkpoint samples:
    input:
        dataset_inputs,
    output:
        table=f"{DATA_DIR}/samples.tsv",
        report=f"{DATA_DIR}/samples_report.md",
    params:
        root=DATA_ROOT,
        annotations=ANNOTATIONS,
        classes=",".join(DATASET["classes"]),
        name=DATASET["name"],
        fps=f"--fps {DATASET['fps']}" if "fps" in DATASET else "",
        loader=LOADER,
        layout=DATASET["layout"],
        apex_fill=DATASET["apex_fill"],
        on_bad_sample=config["on_bad_sample"],
    log:
        f"{LOGS}/samples.log",
    conda:
        ENV
    shell:
        "mer samples --loader {params.loader} --root {params.root:q}"
        " --annotations {params.annotations:q} --classes {params.classes:q}"
        " --dataset {params.name} {params.fps} --layout {params.layout}"
        " --apex-fill {params.apex_fill} --on-bad-sample {params.on_bad_sample}"
        " --out {output.table} --report {output.report}"
        " > {log} 2>&1"

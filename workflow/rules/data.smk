# Stage 1: dataset -> canonical samples table (+ the synthetic dataset when configured).
import shlex


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
        # Optional: SMIC-HS has no annotation file, the MEGC 2019 composite no single root.
        root=f"--root {shlex.quote(DATA_ROOT)}" if DATA_ROOT else "",
        annotations=f"--annotations {shlex.quote(ANNOTATIONS)}" if ANNOTATIONS else "",
        classes=",".join(DATASET["classes"]),
        name=DATASET["name"],
        fps=f"--fps {DATASET['fps']}" if "fps" in DATASET else "",
        loader=LOADER,
        layout=DATASET["layout"],
        apex_fill=DATASET["apex_fill"],
        on_bad_sample=config["on_bad_sample"],
        apex_spotting=DATASET["apex_spotting"],
        sources=json.dumps(DATASET.get("sources", {}), sort_keys=True),
    log:
        f"{LOGS}/samples.log",
    conda:
        ENV
    shell:
        "mer samples --loader {params.loader} {params.root}"
        " {params.annotations} --classes {params.classes:q}"
        " --dataset {params.name} {params.fps} --layout {params.layout}"
        " --apex-fill {params.apex_fill} --apex-spotting {params.apex_spotting}"
        " --on-bad-sample {params.on_bad_sample} --sources-json {params.sources:q}"
        " --out {output.table} --report {output.report}"
        " > {log} 2>&1"

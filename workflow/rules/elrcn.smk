# ELRCN-TE (mer.methods.elrcn), wired like train.smk. Per sample: the sequence inputs (.npz,
# steps x (u, v, strain, gray) at a small size) of the raw clip (no magnification, as the
# original); per (seed, held-out subject): one LOSO fold with its own leak-free early stopping.
# Experiments with `method: elrcn` are planned by mer.plan.runs (its ELRCN runs).


wildcard_constraints:
    elrcn_key=r"[^/]+",
    elrcn_inputs_key=r"[^/]+",


rule elrcn_inputs:
    input:
        frames=lambda wc: sample_row(wc)["frames_dir"],
    output:
        f"{DATA_DIR}/elrcn_inputs/{{elrcn_inputs_key}}/{{sample}}.npz",
    params:
        onset=lambda wc: sample_row(wc)["onset"],
        offset=lambda wc: sample_row(wc)["offset"],
        run=lambda wc: PLAN.elrcn_inputs(wc.elrcn_inputs_key),
        crop=(
            f"--crop-size {CROP['size']} --crop-margin {CROP['margin']}" if CROP["enabled"] else ""
        ),
    log:
        f"{LOGS}/elrcn_inputs/{{elrcn_inputs_key}}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        FEATURES_GROUP
    conda:
        ENV
    shell:
        "mer elrcn-inputs {input.frames:q} {output} --onset {params.onset}"
        " --offset {params.offset} --steps {params.run[steps]} --size {params.run[size]}"
        " --flow-method {params.run[flow_method]} {params.crop} > {log} 2>&1"


rule elrcn_train:
    input:
        table=f"{DATA_DIR}/samples.tsv",
        inputs=lambda wc: expand(
            f"{DATA_DIR}/elrcn_inputs/{ELRCN_RUNS[wc.elrcn_key]['inputs_key']}/{{sample}}.npz",
            sample=all_samples(),
        ),
    output:
        predictions=f"{DATA_DIR}/elrcn/{{elrcn_key}}/seed{{seed}}/{{subject}}/predictions.csv",
        history=f"{DATA_DIR}/elrcn/{{elrcn_key}}/seed{{seed}}/{{subject}}/history.csv",
        fold=f"{DATA_DIR}/elrcn/{{elrcn_key}}/seed{{seed}}/{{subject}}/fold.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.predictions),
        inputs_dir=lambda wc: f"{DATA_DIR}/elrcn_inputs/{ELRCN_RUNS[wc.elrcn_key]['inputs_key']}",
        classes=",".join(DATASET["classes"]),
        train=lambda wc: json.dumps(ELRCN_RUNS[wc.elrcn_key]["train"], sort_keys=True),
        compute=config["compute"],
    log:
        f"{LOGS}/elrcn_train/{{elrcn_key}}/seed{{seed}}/{{subject}}.log",
    # Portable mode's math takes one thread (mer.compute), so a fold needs no more.
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "mer elrcn-train {params.out_dir} --held-out {wildcards.subject:q}"
        " --samples-tsv {input.table} --inputs-dir {params.inputs_dir}"
        " --classes {params.classes:q} --config-json {params.train:q}"
        " --seed {wildcards.seed} --threads {threads} --compute {params.compute} > {log} 2>&1"

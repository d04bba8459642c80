# The LBP-TOP + linear SVM baseline: features per sample, then LOSO in one job per seed
# (a linear SVM trains in milliseconds), written in the same per-fold format as `train`.


rule lbptop_features:
    input:
        frames=lambda wc: sample_row(wc)["frames_dir"],
    output:
        f"{DATA_DIR}/features/{{features_key}}/{{sample}}.npy",
    params:
        onset=lambda wc: sample_row(wc)["onset"],
        offset=lambda wc: sample_row(wc)["offset"],
        run=lambda wc: next(
            r for r in LBPTOP_RUNS.values() if r["features_key"] == wc.features_key
        ),
        crop=(
            f"--crop-size {CROP['size']} --crop-margin {CROP['margin']}" if CROP["enabled"] else ""
        ),
    log:
        f"{LOGS}/lbptop_features/{{features_key}}/{{sample}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    group:
        PREPROCESS_GROUP
    conda:
        ENV
    shell:
        "mer lbptop-features {input.frames:q} {output} --onset {params.onset}"
        " --offset {params.offset} --size {params.run[size]} --radius {params.run[radius]}"
        " --points {params.run[points]} --blocks {params.run[blocks][0]} {params.run[blocks][1]}"
        " {params.crop} > {log} 2>&1"


rule lbptop_loso:
    input:
        table=f"{DATA_DIR}/samples.tsv",
        features=lambda wc: expand(
            f"{DATA_DIR}/features/{LBPTOP_RUNS[wc.lbptop_key]['features_key']}/{{sample}}.npy",
            sample=all_samples(),
        ),
    output:
        # Per-fold predictions.csv and fold.json are written beside it, one folder per subject.
        f"{DATA_DIR}/baseline/{{lbptop_key}}/seed{{seed}}/folds.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output[0]),
        features_dir=lambda wc: f"{DATA_DIR}/features/{LBPTOP_RUNS[wc.lbptop_key]['features_key']}",
        classes=",".join(DATASET["classes"]),
        C=lambda wc: LBPTOP_RUNS[wc.lbptop_key]["C"],
    log:
        f"{LOGS}/lbptop_loso/{{lbptop_key}}/seed{{seed}}.log",
    threads: 1
    conda:
        ENV
    shell:
        "mer lbptop-loso {params.out_dir} --samples-tsv {input.table} --features-dir {params.features_dir}"
        " --classes {params.classes:q} --seed {wildcards.seed} --C {params.C} > {log} 2>&1"

# Stage 7, one job per (experiment, seed, held-out subject): train on the other subjects'
# shards, validate on whole training subjects, test on the held-out subject's originals.
# The fold's resume.pt (per-epoch state) is deliberately not an output: Snakemake deletes a
# failed job's outputs, and a rerun must find it to continue (docs/training.md, Interruptions).


wildcard_constraints:
    train_key=r"[^/]+",
    seed=r"\d+",


rule train:
    input:
        shards=lambda wc: shard_files(TRAIN_RUNS[wc.train_key]["shards"]),
        # Another variant's checkpoint of this fold, where only the head differs (mer.plan.runs).
        trunk=trunk_checkpoint,
        # train.init_weights: a local weights file (edited: the folds rerun).
        init_weights=lambda wc: TRAIN_RUNS[wc.train_key]["train"].get("init_weights") or [],
    output:
        predictions=f"{DATA_DIR}/train/{{train_key}}/seed{{seed}}/{{subject}}/predictions.csv",
        history=f"{DATA_DIR}/train/{{train_key}}/seed{{seed}}/{{subject}}/history.csv",
        checkpoint=f"{DATA_DIR}/train/{{train_key}}/seed{{seed}}/{{subject}}/checkpoint.pt",
        fold=f"{DATA_DIR}/train/{{train_key}}/seed{{seed}}/{{subject}}/fold.json",
    params:
        out_dir=lambda wc, output: os.path.dirname(output.predictions),
        train=lambda wc: json.dumps(TRAIN_RUNS[wc.train_key]["train"], sort_keys=True),
        trunk=lambda wc, input: f"--trunk {input.trunk}" if input.trunk else "",
        compute=config["compute"],
    log:
        f"{LOGS}/train/{{train_key}}/seed{{seed}}/{{subject}}.log",
    # One thread per fold: two 1-thread folds at once train more samples per second than one
    # 2-thread fold (bench_train.py part e, docs/training.md). More threads (`--set-threads
    # train=N`) serve only `compute: fast`; portable mode's math takes one, whatever N is.
    threads: 1
    # Above the default 0 of every other job: folds start as soon as shards allow, longest
    # first; short jobs (the motion card, evaluations) fill the cores the last folds leave.
    priority: train_priority
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        ENV
    shell:
        "mer train {params.out_dir} --held-out {wildcards.subject:q} --shards {input.shards}"
        " --config-json {params.train:q} --seed {wildcards.seed} --threads {threads}"
        " --compute {params.compute} {params.trunk} > {log} 2>&1"


rule train_all:
    """Named target: every fold of every configured experiment and seed."""
    input:
        lambda wc: [f for key in EXPERIMENTS.values() for f in experiment_inputs(key)],

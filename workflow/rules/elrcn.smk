# DRAFT, not included by the Snakefile: ELRCN-TE (mer.methods.elrcn), wired like train.smk.
# Per sample: the sequence inputs (.npz, steps x (u, v, strain, gray) at a small size) of the
# raw clip (no magnification, as the original); per (seed, held-out subject): one LOSO fold.
#
# What the integrator must connect (names below assume them):
# - common.smk: an `ELRCN_RUNS = {}` beside LBPTOP_RUNS, and in register_experiment a branch
#       if method == "elrcn":
#           inputs = {k: settings["elrcn"][k] for k in ("steps", "size", "flow_method")}
#           inputs_key = param_key("elrcn", {**inputs, "crop": CROP}, DATA_KEY)
#           train = {k: v for k, v in settings["elrcn"].items() if k not in inputs}
#           key = shared_key(param_key(name, train, inputs_key))
#           ELRCN_RUNS.setdefault(key, {"experiment": name, "inputs_key": inputs_key,
#                                       "inputs": inputs, "train": train})
#           return key
#   with an `elrcn:` section in config.yaml and workflow/schemas/config.schema.yaml
#   (steps 10, size 64, flow_method deepflow, plus any mer.methods.elrcn.ElrcnSettings field,
#   e.g. max_epochs, patience, enrichment) and an experiment `elrcn_te: {method: elrcn}`.
# - seed_dir(key, seed): ELRCN folds live under f"{DATA_DIR}/elrcn/{key}/seed{seed}".
# - experiment_inputs(key): for an ELRCN key, the per-fold predictions.csv of every seed and
#   subject (as fold_outputs does for train/); experiment_name(key): ELRCN_RUNS[key].
# - current_keys(): "elrcn_inputs": [r["inputs_key"] for r in ELRCN_RUNS.values()] and
#   "elrcn": list(ELRCN_RUNS) (and the evaluation list), so `clean` keeps them.
# - methods/cli.py: `from mer.methods import elrcn_cli` ... `elrcn_cli.register(verbs)`;
#   README's code map gains the verbs elrcn-inputs and elrcn-train.


wildcard_constraints:
    elrcn_key=r"[^/]+",
    elrcn_inputs_key=r"[^/]+",


def elrcn_inputs_run(wildcards):
    """The input parameters of an inputs key (one per distinct steps/size/flow/crop)."""
    return next(
        r["inputs"] for r in ELRCN_RUNS.values() if r["inputs_key"] == wildcards.elrcn_inputs_key
    )


rule elrcn_inputs:
    input:
        frames=lambda wc: sample_row(wc)["frames_dir"],
    output:
        f"{DATA_DIR}/elrcn_inputs/{{elrcn_inputs_key}}/{{sample}}.npz",
    params:
        onset=lambda wc: sample_row(wc)["onset"],
        offset=lambda wc: sample_row(wc)["offset"],
        run=elrcn_inputs_run,
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
        PREPROCESS_GROUP
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
    log:
        f"{LOGS}/elrcn_train/{{elrcn_key}}/seed{{seed}}/{{subject}}.log",
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        ENV
    shell:
        "mer elrcn-train {params.out_dir} --held-out {wildcards.subject:q}"
        " --samples-tsv {input.table} --inputs-dir {params.inputs_dir}"
        " --classes {params.classes:q} --config-json {params.train:q}"
        " --seed {wildcards.seed} --threads {threads} > {log} 2>&1"

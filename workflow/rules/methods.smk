# Descriptor + linear SVM methods (mer.methods.registry: LBP-TOP, LBP-SIP, HOOF, HOG3D, ...):
# per method, one features job per sample and one LOSO job per seed (a linear SVM trains in
# milliseconds), written in the same per-fold format as `train`. The rules are made from one
# template per registered method, so that job tables name the method (lbptop_features 48).


def feature_source(wildcards):
    """What a features job reads: the raw clip's frames, or the flow of its chain."""
    run = FEATURE_RUNS[wildcards.features_key]
    if "flow_key" in run:
        return f"{DATA_DIR}/flow/{run['flow_key']}/{wildcards.sample}.npz"
    return sample_row(wildcards)["frames_dir"]


def feature_input(wildcards):
    """A features job's input: the frames, or the manifest of the flow job of the sample's
    subject (the job that writes its flow, preprocess.smk)."""
    run = FEATURE_RUNS[wildcards.features_key]
    if "flow_key" in run:
        return manifest("flow", run["flow_key"], sample_row(wildcards)["subject"])
    return sample_row(wildcards)["frames_dir"]


def clip_options(wildcards):
    """The clip's frame range and face crop (clip methods); in params, so that an edited onset
    or offset reruns the clip's features."""
    if "flow_key" in FEATURE_RUNS[wildcards.features_key]:
        return ""
    row = sample_row(wildcards)
    options = f"--onset {row['onset']} --offset {row['offset']}"
    if METHODS[FEATURE_RUNS[wildcards.features_key]["method"]].needs_fps:
        options += f" --fps {row['fps']}"
    if CROP["enabled"]:
        options += f" --crop-size {CROP['size']} --crop-margin {CROP['margin']}"
    return options


def svm_section(baseline_key):
    """A LOSO run's method section (its registry entry's keys)."""
    run = SVM_RUNS[baseline_key]
    return {k: run[k] for k in METHODS[run["method"]].defaults if k in run}


def keys_of(runs, method):
    """A wildcard pattern matching exactly this method's registered keys (none: never)."""
    keys = [key for key, run in runs.items() if run["method"] == method]
    return "|".join(re.escape(key) for key in keys) or "(?!)"


for _method in METHODS:

    rule:
        name:
            f"{_method}_features"
        input:
            feature_input,
        output:
            f"{DATA_DIR}/features/{{features_key}}/{{sample}}.npy",
        wildcard_constraints:
            features_key=keys_of(FEATURE_RUNS, _method),
        params:
            method=_method,
            source=feature_source,
            section=lambda wc: json.dumps(FEATURE_RUNS[wc.features_key]["params"], sort_keys=True),
            options=clip_options,
        log:
            f"{LOGS}/{_method}_features/{{features_key}}/{{sample}}.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        group:
            FEATURES_GROUP
        conda:
            ENV
        shell:
            "mer method-features {params.method} {params.source:q} {output}"
            " --params-json {params.section:q} {params.options} > {log} 2>&1"

    rule:
        name:
            f"{_method}_loso"
        input:
            table=f"{DATA_DIR}/samples.tsv",
            features=lambda wc: expand(
                f"{DATA_DIR}/features/{SVM_RUNS[wc.baseline_key]['features_key']}/{{sample}}.npy",
                sample=all_samples(),
            ),
        output:
            # Per-fold predictions.csv and fold.json are written beside it, one folder per subject.
            f"{DATA_DIR}/baseline/{{baseline_key}}/seed{{seed}}/folds.json",
        wildcard_constraints:
            baseline_key=keys_of(SVM_RUNS, _method),
        params:
            out_dir=lambda wc, output: os.path.dirname(output[0]),
            features_dir=lambda wc: f"{DATA_DIR}/features/{SVM_RUNS[wc.baseline_key]['features_key']}",
            classes=",".join(DATASET["classes"]),
            method=_method,
            C=lambda wc: SVM_RUNS[wc.baseline_key]["C"],
            # A method with its own fold (adaptive_lbptop) reads its whole section.
            section=lambda wc: (
                f"--params-json {shlex.quote(json.dumps(svm_section(wc.baseline_key), sort_keys=True))}"
                if METHODS[SVM_RUNS[wc.baseline_key]["method"]].fold
                else ""
            ),
        log:
            f"{LOGS}/{_method}_loso/{{baseline_key}}/seed{{seed}}.log",
        threads: 1
        conda:
            ENV
        shell:
            "mer svm-loso {params.out_dir} --samples-tsv {input.table}"
            " --features-dir {params.features_dir} --classes {params.classes:q}"
            " --method {params.method} --seed {wildcards.seed} --C {params.C}"
            " {params.section} > {log} 2>&1"

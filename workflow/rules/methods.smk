# Descriptor + linear SVM methods (mer.methods.registry: LBP-TOP, LBP-SIP, HOOF, HOG3D, ...):
# per method, one features job per subject (each sample's <sample>.npy, then the subject's
# manifest, as the preprocessing jobs) and one LOSO job per seed (a linear SVM trains in
# milliseconds), written in the same per-fold format as `train`. The rules are made from one
# template per registered method, so that job tables name the method (lbptop_features 8).
import re
import shlex

from mer.methods.registry import METHODS


def feature_input(wildcards):
    """A features job's input: its subject's frames, or the manifest of the subject's flow job
    (preprocess.smk)."""
    run = FEATURE_RUNS[wildcards.features_key]
    if "flow_key" in run:
        return manifest_input("flow", run["flow_key"], wildcards)
    return [row["frames_dir"] for row in subject_rows(wildcards)]


def feature_clips(wildcards):
    """Each sample's source (frames or flow file) and, for clip methods, its timing: in params,
    so that an edited onset or offset reruns its subject's features."""
    run = FEATURE_RUNS[wildcards.features_key]
    if "flow_key" in run:
        flow_dir = f"{DATA_DIR}/flow/{run['flow_key']}"
        samples = subject_samples(wildcards)
        clips = [{"sample": s, "source": f"{flow_dir}/{s}.npz"} for s in samples]
    else:
        timing = ("onset", "offset") + ("fps",) * METHODS[run["method"]].needs_fps
        clips = [
            {"sample": row["sample"], "source": row["frames_dir"], **{k: row[k] for k in timing}}
            for row in subject_rows(wildcards)
        ]
    return json.dumps(clips)


def crop_options(wildcards):
    """The face crop of clip methods, as configured."""
    if "flow_key" in FEATURE_RUNS[wildcards.features_key] or not CROP["enabled"]:
        return ""
    return f"--crop-size {CROP['size']} --crop-margin {CROP['margin']}"


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
            # Each sample's features/<key>/<sample>.npy, then this manifest (common.smk).
            manifest("features", "{features_key}", "{subject}"),
        wildcard_constraints:
            features_key=keys_of(FEATURE_RUNS, _method),
        params:
            method=_method,
            out_dir=lambda wc: f"{DATA_DIR}/features/{wc.features_key}",
            clips=feature_clips,
            section=lambda wc: json.dumps(FEATURE_RUNS[wc.features_key]["params"], sort_keys=True),
            crop=crop_options,
        log:
            f"{LOGS}/{_method}_features/{{features_key}}/{{subject}}.log",
        threads: 1
        resources:
            mem_mb=1000,
            runtime=30,
        group:
            FEATURES_GROUP
        conda:
            ENV
        shell:
            "mer method-features-clips {params.method} {params.out_dir}"
            " --clips-json {params.clips:q} --manifest {output}"
            " --params-json {params.section:q} {params.crop} > {log} 2>&1"

    rule:
        name:
            f"{_method}_loso"
        input:
            table=f"{DATA_DIR}/samples.tsv",
            features=lambda wc: subject_manifests(
                "features", SVM_RUNS[wc.baseline_key]["features_key"]
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

# Lookups for the rules: the plan's runs by the key in a job's path (mer.plan builds the plan
# from the validated config), the samples table of the checkpoint, and artifact paths.
import functools
import json
import os

import pandas as pd

from mer.plan.runs import build_plan

RESULTS = config["results"]
DATASET = config["dataset"]
DATA_DIR = f"{RESULTS}/{DATASET['name']}"
LOGS = f"{DATA_DIR}/logs"
ENV = "../../envs/mer.yaml"
SYNTHETIC = DATASET["loader"] == "synthetic"

PLAN = build_plan(config)
EVM_RUNS, FLOW_RUNS, MASK_RUNS = PLAN.runs["evm"], PLAN.runs["flow"], PLAN.runs["masks"]
SHARD_RUNS, TRAIN_RUNS, FEATURE_RUNS = (PLAN.runs[s] for s in ("shards", "train", "features"))
SVM_RUNS, ELRCN_RUNS = PLAN.runs["baseline"], PLAN.runs["elrcn"]
EXPERIMENTS, SWEEPS, DEFAULT_CHAIN = PLAN.experiments, PLAN.sweeps, PLAN.default_chain
CROP, SEEDS = PLAN.crop, config["seeds"]


def stage_dir(stage, key):
    """An artifact folder: results/<dataset>/<stage>/<key>."""
    return f"{DATA_DIR}/{stage}/{key}"


if SYNTHETIC:
    SYNTH_DIR = stage_dir("dataset", PLAN.synth_key)
    DATA_ROOT = f"{SYNTH_DIR}/frames"
    ANNOTATIONS = f"{SYNTH_DIR}/annotations.csv"
else:
    # SMIC-HS has no annotation file (its tree is the annotation); the MEGC 2019 composite
    # reads its databases' frames from dataset.sources instead of one root.
    DATA_ROOT = DATASET.get("root", "")
    ANNOTATIONS = DATASET.get("annotations", "")
# The synthetic set is written as a table; casme2 and samm read the official sheets.
LOADER = "table" if SYNTHETIC else DATASET["loader"]
MASK_DIR = stage_dir("masks", DEFAULT_CHAIN["masks"])


def dataset_inputs(wildcards):
    """The annotation table: made by the synth rule, or a real dataset's file on disk (an
    input either way, so that editing it reruns the samples table)."""
    sheets = [source["annotations"] for source in DATASET.get("sources", {}).values()
              if source.get("annotations")]
    return [ANNOTATIONS] * bool(ANNOTATIONS) + sheets


# ---- the samples table (made by the checkpoint `samples`) -------------------------------
def samples_version():
    """The checkpoint's samples table: its path and mtime (the cache key of its readers)."""
    if workflow.remote_exec:
        # A cluster job (e.g. SLURM): the submitting Snakemake finished the checkpoint before
        # submitting it, but this Snakemake's DAG lacks the checkpoint job and would reject
        # parameters that read it, so read the table straight from the shared filesystem.
        path = f"{DATA_DIR}/samples.tsv"
    else:
        path = checkpoints.samples.get().output.table
    return path, os.path.getmtime(path)


@functools.lru_cache(maxsize=4)
def _samples_index(path, mtime):
    """The table as {sample: row} and {subject: [samples]}, read once per table version.
    Rows are plain Python values: Snakemake stores them as the jobs' params, so an edited
    onset, apex or offset reruns that clip (numpy integers are not stored); a dict lookup is
    also far cheaper than DataFrame.loc, which thousands of per-sample jobs call."""
    table = pd.read_csv(path, sep="\t", dtype={"subject": str, "video": str})
    rows = table.set_index("sample", drop=False).to_dict("index")
    by_subject = {}
    for sample, row in rows.items():
        by_subject.setdefault(row["subject"], []).append(sample)
    return rows, by_subject


def samples_index():
    return _samples_index(*samples_version())


def sample_row(wildcards):
    """One sample's row of the samples table, as a dict of plain values."""
    return samples_index()[0][wildcards.sample]


def all_samples():
    return list(samples_index()[0])


def all_subjects():
    return sorted(samples_index()[1])


def subject_samples(wildcards):
    """The samples of wildcards.subject, in the table's order."""
    by_subject = samples_index()[1]
    if wildcards.subject not in by_subject:
        raise ValueError(f"subject {wildcards.subject!r} has no sample in {DATA_DIR}/samples.tsv")
    return by_subject[wildcards.subject]


def subject_rows(wildcards):
    """The rows of wildcards.subject's samples (plain values, for params)."""
    rows = samples_index()[0]
    return [rows[sample] for sample in subject_samples(wildcards)]


# Preprocessing and the descriptors' features run one job per (stage key, subject): it writes
# every clip's <sample>.npz (.npy), then the subject's manifest <stage>/<key>/subjects/
# <subject>.tsv, which readers take as input. On a cluster a subject's evm -> flow -> masks
# jobs form one component of the group `preprocess` (one SLURM job each: profiles/slurm).
PREPROCESS_GROUP = "preprocess"
FEATURES_GROUP = "features"


def manifest(stage, key, subject):
    """The declared output of a per-subject preprocessing job (the samples it wrote)."""
    return f"{stage_dir(stage, key)}/subjects/{subject}.tsv"


def manifest_input(stage, key, wildcards):
    """A subject's manifest as a job's input. The samples table is read here first: the jobs
    taking one as input read the table in their params, which Snakemake allows only once an
    input function has read the checkpoint (else naming such a job's output as the target,
    with the checkpoint's job out of the DAG, is refused)."""
    samples_version()
    return manifest(stage, key, wildcards.subject)


def subject_manifests(stage, key):
    return [manifest(stage, key, subject) for subject in all_subjects()]


def evm_clips(wildcards):
    """Each clip's frames and timing, in params: an edited onset, apex, offset or fps reruns
    its subject's job (plain values: Snakemake records them)."""
    fields = ("sample", "frames_dir", "onset", "apex", "offset", "fps")
    return json.dumps([{f: row[f] for f in fields} for row in subject_rows(wildcards)])


def evm_options(evm):
    """Optional `mer evm` flags: working size, face crop, pyramid levels."""
    options = []
    if evm["size"]:
        options.append(f"--size {evm['size']}")
    if evm["crop"]["enabled"]:
        options.append(f"--crop-size {evm['crop']['size']} --crop-margin {evm['crop']['margin']}")
    if evm["levels"]:
        options.append(f"--levels {evm['levels']}")
    return " ".join(options)


def shard_files(shard_key):
    return expand(f"{stage_dir('shards', shard_key)}/{{subject}}.h5", subject=all_subjects())


# ---- experiments' folds -------------------------------------------------------------------
def seed_dir(key, seed):
    """Where an experiment's folds of one seed live (train/, baseline/ or elrcn/)."""
    return f"{stage_dir(PLAN.fold_stage(key), key)}/seed{seed}"


def fold_outputs(key, name="predictions.csv"):
    """One file per (seed, held-out subject) of an experiment."""
    subjects = all_subjects()
    return [f"{seed_dir(key, seed)}/{subject}/{name}" for seed in SEEDS for subject in subjects]


def experiment_inputs(key):
    """The files that prove an experiment's folds are done, all seeds."""
    if key in SVM_RUNS:
        # Resolve the checkpoint here, in the input function, not first in a params function
        # (Snakemake would then keep flagging the job's outputs as updated).
        all_subjects()
        return [f"{seed_dir(key, seed)}/folds.json" for seed in SEEDS]
    return fold_outputs(key)


def train_priority(wildcards):
    """Costlier folds start first (more streams; a head refit on another variant's trunk is
    cheap), so that a run does not end on one long fold while the other cores idle."""
    run = TRAIN_RUNS[wildcards.train_key]
    return 1 if run["trunk_from"] else 1 + len(run["train"]["streams"])


def trunk_checkpoint(wildcards):
    """The checkpoint of this fold whose trunk the experiment takes ([]: it trains its own)."""
    owner = TRAIN_RUNS[wildcards.train_key]["trunk_from"]
    if owner is None:
        return []
    return f"{seed_dir(owner, wildcards.seed)}/{wildcards.subject}/checkpoint.pt"


def current_keys():
    """Every key the current config produces, per stage folder (what clean-cache keeps)."""
    return json.dumps(PLAN.keys(), sort_keys=True)

# Paths and parameter keys shared by the rules. Every artifact path carries the key of the
# parameters that made it (mer.store.files.param_key), chained from upstream.
import copy
import functools
import json
import os
import re
import shlex

import jsonschema
import pandas as pd
import yaml

from mer.compute import TRAINING_NUMERICS
from mer.data.crop import crop_enabled
from mer.store.files import param_key
from mer.preprocess.flow import resolve_params
from mer.data.synth import SynthParams
from mer.methods.registry import METHODS, paper_experiments

RESULTS = config["results"]
DATASET = config["dataset"]
DATA_DIR = f"{RESULTS}/{DATASET['name']}"
LOGS = f"{DATA_DIR}/logs"
ENV = "../../envs/mer.yaml"
SYNTHETIC = DATASET["loader"] == "synthetic"

if SYNTHETIC:
    # Fail at parse time, naming the keys, rather than deep inside a job.
    if sorted(config["synthetic"]["class_priors"]) != sorted(DATASET["classes"]):
        raise ValueError(
            "config: synthetic.class_priors keys "
            f"{sorted(config['synthetic']['class_priors'])} must be the dataset.classes "
            f"{sorted(DATASET['classes'])}"
        )
    if config["synthetic"]["frames_min"] > config["synthetic"]["frames_max"]:
        raise ValueError("config: synthetic.frames_min must not exceed synthetic.frames_max")
    SYNTH_PARAMS = SynthParams.from_dict(config["synthetic"])
    SYNTH_KEY = param_key(f"seed{SYNTH_PARAMS.seed}", config["synthetic"])
    SYNTH_DIR = f"{DATA_DIR}/dataset/{SYNTH_KEY}"
    DATA_ROOT = f"{SYNTH_DIR}/frames"
    ANNOTATIONS = f"{SYNTH_DIR}/annotations.csv"
else:
    # SMIC-HS has no annotation file (its tree is the annotation); the MEGC 2019 composite
    # reads its databases' frames from dataset.sources instead of one root.
    DATA_ROOT = DATASET.get("root", "")
    ANNOTATIONS = DATASET.get("annotations", "")
# The synthetic set is written as a table; casme2 and samm read the official sheets.
LOADER = "table" if SYNTHETIC else DATASET["loader"]
# Face crop of uncropped frames (mer.data.crop): resolved here, wired into the per-clip stage.
CROP = dict(
    DATASET["crop"],
    enabled=crop_enabled(DATASET["crop"]["enabled"], DATASET["loader"], DATASET["layout"]),
)


def dataset_inputs(wildcards):
    """The annotation table: made by the synth rule, or a real dataset's file on disk (an
    input either way, so that editing it reruns the samples table)."""
    sheets = [source["annotations"] for source in DATASET.get("sources", {}).values()
              if source.get("annotations")]
    return [ANNOTATIONS] * bool(ANNOTATIONS) + sheets


def dataset_previews():
    return [f"{DATA_DIR}/preview/synthetic_clips.png"] if SYNTHETIC else []


# ---- keys of the preprocessing stages, each chained from the one before -----------------
if SYNTHETIC:
    DATA_KEY = SYNTH_KEY
else:
    DATA_KEY = param_key(
        DATASET["loader"], {k: v for k, v in DATASET.items() if k not in ("name", "classes")}
    )
# OpenCV computes on its AVX2 code (mer.compute.cap_opencv): the artifacts it makes from the
# clips (crop, EVM, flows, and all they feed) carry that in their keys, so none made before
# the cap is taken for one made after.
OPENCV_SIMD = "avx2"
# Each stage's runs, by key: the parameters and the upstream key. Experiments may override
# any stage (alpha, flow method, ...), so several chains can coexist; rules look their
# parameters up here by the key in the output path.
EVM_RUNS, FLOW_RUNS, MASK_RUNS, SHARD_RUNS, TRAIN_RUNS = {}, {}, {}, {}, {}


def settings_with(overrides):
    """The config with an experiment's per-section overrides applied."""
    settings = copy.deepcopy(config)
    for section, values in overrides.items():
        settings[section] = {**settings[section], **values}
    return settings


def register_chain(settings):
    """Keys of evm -> flow -> masks -> shards for these settings, each chained from the last."""
    evm = {**settings["evm"], "size": settings["preprocess"]["size"], "crop": CROP}
    evm_tag = f"{evm['mode']}-a{evm['alpha']:g}"
    evm_key = param_key(evm_tag, {**evm, "simd": OPENCV_SIMD}, DATA_KEY)
    EVM_RUNS[evm_key] = evm
    # Hash the resolved parameters, so that `params: {}` and the defaults written out agree.
    method = settings["flow"]["method"]
    flow = {"method": method, "params": resolve_params(method, **settings["flow"]["params"])}
    flow_key = param_key(method, flow, evm_key)
    FLOW_RUNS[flow_key] = dict(flow, evm_key=evm_key)
    masks = settings["masks"]
    mask_key = param_key(f"t{masks['threshold']}", masks, flow_key)
    MASK_RUNS[mask_key] = dict(masks, evm_key=evm_key, flow_key=flow_key)
    shards = settings["shards"]
    shard_key = param_key(f"s{shards['input_size']}", shards, mask_key)
    # Everything upstream, stored in each shard for provenance.
    provenance = {"data_key": DATA_KEY, "evm": evm, "flow": flow, "masks": masks, "shards": shards}
    SHARD_RUNS[shard_key] = dict(shards, flow_key=flow_key, mask_key=mask_key,
                                 provenance=provenance)
    return {"evm": evm_key, "flow": flow_key, "masks": mask_key, "shards": shard_key}


DEFAULT_CHAIN = register_chain(config)
MASK_DIR = f"{DATA_DIR}/masks/{DEFAULT_CHAIN['masks']}"


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
def _read_samples(path, mtime):
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "video": str}).set_index(
        "sample", drop=False
    )


@functools.lru_cache(maxsize=4)
def _sample_rows(path, mtime):
    # Plain Python values: Snakemake stores them as the jobs' params, so an edited onset,
    # apex or offset reruns that clip (numpy integers are not stored). A dict lookup is also
    # far cheaper than DataFrame.loc, which thousands of per-sample jobs call at every run.
    return _read_samples(path, mtime).to_dict("index")


def samples_table():
    """The checkpoint's samples table, indexed by sample (read once per table version)."""
    return _read_samples(*samples_version())


def sample_row(wildcards):
    """One sample's row of the samples table, as a dict of plain values."""
    return _sample_rows(*samples_version())[wildcards.sample]


# Preprocessing runs one job per (stage key, subject), and so do the descriptors' features
# (methods.smk): `mer evm-clips` etc. write every clip's <sample>.npz (.npy) of the subject in
# one process, then the job's declared output, the subject's manifest
# <stage>/<key>/subjects/<subject>.tsv. Readers of per-sample artifacts take the manifests of
# their subjects as inputs. (Per clip and stage, process start-up was most of the cost:
# docs/preprocessing.md.) On a cluster, a subject's evm -> flow -> masks jobs are one connected
# component of the group `preprocess`, so `group-components: preprocess=1` submits one job per
# subject (profiles/slurm); the features jobs have their own group, bundled by the profile.
PREPROCESS_GROUP = "preprocess"
FEATURES_GROUP = "features"


def all_samples():
    return list(samples_table().index)


def all_subjects():
    return sorted(_samples_by_subject(*samples_version()))


@functools.lru_cache(maxsize=4)
def _samples_by_subject(path, mtime):
    by_subject = {}
    for sample, row in _sample_rows(path, mtime).items():
        by_subject.setdefault(row["subject"], []).append(sample)
    return by_subject


def subject_samples(wildcards):
    """The samples of wildcards.subject, in the table's order."""
    by_subject = _samples_by_subject(*samples_version())
    if wildcards.subject not in by_subject:
        raise ValueError(f"subject {wildcards.subject!r} has no sample in {DATA_DIR}/samples.tsv")
    return by_subject[wildcards.subject]


def subject_rows(wildcards):
    """The rows of wildcards.subject's samples (plain values, for params)."""
    rows = _sample_rows(*samples_version())
    return [rows[sample] for sample in subject_samples(wildcards)]


def manifest(stage, key, subject):
    """The declared output of a per-subject preprocessing job (the samples it wrote)."""
    return f"{DATA_DIR}/{stage}/{key}/subjects/{subject}.tsv"


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
    return expand(f"{DATA_DIR}/shards/{shard_key}/{{subject}}.h5", subject=all_subjects())


# ---- experiments: each a chain of stage keys plus its training parameters ---------------
# Descriptor methods (mer.methods.registry): per-sample features by key, and the LOSO-SVM runs
# (their folds under baseline/) by key.
FEATURE_RUNS, SVM_RUNS = {}, {}
# ELRCN-TE (mer.methods.elrcn): per-sample sequence inputs by key, and its folds by key.
ELRCN_RUNS = {}
ELRCN_INPUTS = ("steps", "size", "flow_method")  # what the per-sample inputs depend on
# Variants with identical parameters (alpha_8 of the sweep and mscnn, stream_flow and evm_flow)
# share one set of artifacts, named after the first experiment registered with them.
KEY_BY_DIGEST = {}


def shared_key(key):
    """The key registered first with the same parameters (the hash after the last '-')."""
    return KEY_BY_DIGEST.setdefault(key.rsplit("-", 1)[1], key)


# Experiments' overrides are checked against the config schema, read once: Snakemake's
# validate() re-reads and compiles it per call, ~40 ms for each of the ~20 variants. Only the
# sections an experiment overrides are checked (one compiled validator per section): the rest
# is the config itself, which the Snakefile validated.
SCHEMA_PATH = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
with open(SCHEMA_PATH) as schema_file:
    SETTINGS_SCHEMA = yaml.safe_load(schema_file)


@functools.cache
def section_validator(section):
    schema = {"$defs": SETTINGS_SCHEMA.get("$defs", {}), **SETTINGS_SCHEMA["properties"][section]}
    return jsonschema.Draft202012Validator(schema)


def check_settings(name, overrides, where="experiments"):
    """A bad override fails at parse time, naming the experiment, the key and what is allowed."""
    # (An unknown section is refused earlier, by the Snakefile's validation of `experiments`.)
    for section, values in overrides.items():
        errors = section_validator(section).iter_errors({**config[section], **values})
        error = jsonschema.exceptions.best_match(errors)
        if error is not None:
            key = ".".join(str(part) for part in [section, *error.absolute_path])
            raise ValueError(f"config: {where}.{name} sets {key}: {error.message}")


# Settings read only by the head refit after the dense layer (= mer.learn.train.HEAD_SETTINGS,
# tested): an experiment that differs from an earlier one in nothing else (the ablation's
# over-samplers) takes that one's trained trunk and only refits the head.
HEAD_SETTINGS = ('oversampler', 'head_epochs')
TRUNK_OWNER = {}
def trunk_owner(train_key, train, shard_key):
    """The experiment whose trained trunk this one takes (None: it trains its own)."""
    if train["oversampler"] == "input":  # balances the batches: its own trunk
        return None
    trunk = {k: v for k, v in train.items() if k not in HEAD_SETTINGS}
    owner = TRUNK_OWNER.setdefault(param_key("trunk", trunk, shard_key), train_key)
    return None if owner == train_key else owner


def register_experiment(name, overrides, where="experiments"):
    """Register an experiment's runs; return the key of its per-fold predictions."""
    overrides = dict(overrides)
    method = overrides.pop("method", "mscnn")
    check_settings(name, overrides, where)
    settings = settings_with(overrides)
    if method in METHODS:
        return register_descriptor(name, method, settings)
    if method == "elrcn":
        return register_elrcn(name, settings["elrcn"])
    chain = register_chain(settings)
    # The compute mode and the release's training numerics change the bits: such folds are
    # not reused.
    keyed = {**settings["train"], "compute": config["compute"], "numerics": TRAINING_NUMERICS}
    train_key = shared_key(param_key(name, keyed, chain["shards"]))
    if train_key not in TRAIN_RUNS:
        trunk_from = trunk_owner(train_key, settings["train"], chain["shards"])
        TRAIN_RUNS[train_key] = dict(
            experiment=name, train=settings["train"], trunk_from=trunk_from, **chain
        )
    return train_key


def train_priority(wildcards):
    """Costlier folds start first (more streams; a head refit on another variant's trunk is
    cheap), so that a run does not end on one long fold while the other cores idle."""
    run = TRAIN_RUNS[wildcards.train_key]
    return 1 if run["trunk_from"] else 1 + len(run["train"]["streams"])


def register_descriptor(name, method, settings):
    """A descriptor + LOSO SVM experiment: its features' key (chained from the raw clips, or
    from the flow of its chain) and its folds' key."""
    section = settings[method]
    if METHODS[method].inputs == "clip":
        # The raw clip (no magnification, no flow), cropped and resized as configured.
        features_key = param_key(method, {**section, "crop": CROP, "simd": OPENCV_SIMD}, DATA_KEY)
        FEATURE_RUNS.setdefault(features_key, {"method": method, "params": section})
    else:  # the onset->apex flow artifact of the experiment's chain, shared with MSCNN
        flow_key = register_chain(settings)["flow"]
        features_key = param_key(method, section, flow_key)
        FEATURE_RUNS.setdefault(
            features_key, {"method": method, "params": section, "flow_key": flow_key}
        )
    key = shared_key(param_key(name, section, features_key))
    SVM_RUNS.setdefault(
        key, {"experiment": name, "method": method, "features_key": features_key, **section}
    )
    return key


def register_elrcn(name, section):
    """An ELRCN-TE experiment: its inputs' key (from the raw clips) and its folds' key."""
    inputs = {k: section[k] for k in ELRCN_INPUTS}
    inputs_key = param_key("elrcn", {**inputs, "crop": CROP, "simd": OPENCV_SIMD}, DATA_KEY)
    train = {k: v for k, v in section.items() if k not in ELRCN_INPUTS}
    key = shared_key(param_key(name, {**train, "compute": config["compute"]}, inputs_key))
    ELRCN_RUNS.setdefault(
        key, {"experiment": name, "inputs_key": inputs_key, "inputs": inputs, "train": train}
    )
    return key


def elrcn_inputs_run(wildcards):
    """The input parameters of an inputs key (one per distinct steps/size/flow/crop)."""
    return next(
        r["inputs"] for r in ELRCN_RUNS.values() if r["inputs_key"] == wildcards.elrcn_inputs_key
    )


EXPERIMENTS = {
    name: register_experiment(name, overrides) for name, overrides in config["experiments"].items()
}
# Named targets with their own variants (docs/experiments.md): the method's alpha figure,
# the ablation that says where a gain comes from, and the variants beyond the method
# (`sweeps.ablation`, `sweeps.beyond`: config data).
MSCNN = {k: v for k, v in config["experiments"].get("mscnn", {}).items() if k != "method"}
SWEEPS = {
    "alpha_sweep": {
        f"alpha_{a:g}": register_experiment(
            f"alpha_{a:g}", {**MSCNN, "evm": {**MSCNN.get("evm", {}), "alpha": a}}
        )
        for a in config["sweeps"]["alpha"]
    },
    # The configured method beside its variants (config data, `sweeps.ablation`).
    "ablation": {
        name: register_experiment(name, overrides, where="sweeps.ablation")
        for name, overrides in {"mscnn": MSCNN, **config["sweeps"]["ablation"]}.items()
    },
    "beyond": {
        name: register_experiment(name, overrides, where="sweeps.beyond")
        for name, overrides in config["sweeps"].get("beyond", {}).items()
    },
}
# `snakemake paper`: the configured experiments plus one per registered comparison row, named
# after the method (the summary finds each row's published numbers by that name).
SWEEPS["paper"] = {
    name: register_experiment(name, overrides)
    for name, overrides in {
        **config["experiments"],
        **{m: {"method": m} for m in paper_experiments() if m not in config["experiments"]},
        # ELRCN-TE trains a network per fold (its own rules), so it is not a registry entry.
        **({"elrcn": {"method": "elrcn"}} if "elrcn" not in config["experiments"] else {}),
    }.items()
}
SEEDS = config["seeds"]


def seed_dir(key, seed):
    """Where an experiment's folds of one seed live: train/ (MSCNN) or baseline/ (descriptor
    methods)."""
    stage = "baseline" if key in SVM_RUNS else "elrcn" if key in ELRCN_RUNS else "train"
    return f"{DATA_DIR}/{stage}/{key}/seed{seed}"


def experiment_inputs(key):
    """The files that prove an experiment's folds are done, all seeds."""
    if key in SVM_RUNS:
        # Resolve the checkpoint here, in the input function, not first in a params function
        # (Snakemake would then keep flagging the job's outputs as updated).
        all_subjects()
        return [f"{seed_dir(key, seed)}/folds.json" for seed in SEEDS]
    if key in ELRCN_RUNS:
        return expand(
            f"{DATA_DIR}/elrcn/{key}/seed{{seed}}/{{subject}}/predictions.csv",
            seed=SEEDS,
            subject=all_subjects(),
        )
    return fold_outputs(key)


def fold_outputs(train_key, name="predictions.csv"):
    """One file per (seed, held-out subject) of an experiment."""
    return expand(
        f"{DATA_DIR}/train/{train_key}/seed{{seed}}/{{subject}}/{name}",
        seed=SEEDS,
        subject=all_subjects(),
    )


def trunk_checkpoint(wildcards):
    """The checkpoint of this fold whose trunk the experiment takes ([]: it trains its own)."""
    owner = TRAIN_RUNS[wildcards.train_key]["trunk_from"]
    if owner is None:
        return []
    return f"{DATA_DIR}/train/{owner}/seed{wildcards.seed}/{wildcards.subject}/checkpoint.pt"


def experiment_name(key):
    runs = SVM_RUNS.get(key) or ELRCN_RUNS.get(key) or TRAIN_RUNS[key]
    return runs["experiment"]


def current_keys():
    """Every key the current config produces, per stage folder under results/<name>/."""
    keys = {
        "evm": list(EVM_RUNS),
        "flow": list(FLOW_RUNS),
        "masks": list(MASK_RUNS),
        "shards": list(SHARD_RUNS),
        "train": list(TRAIN_RUNS),
        "features": list(FEATURE_RUNS),
        "baseline": list(SVM_RUNS),
        "elrcn_inputs": sorted({r["inputs_key"] for r in ELRCN_RUNS.values()}),
        "elrcn": list(ELRCN_RUNS),
        "evaluation": list(TRAIN_RUNS) + list(SVM_RUNS) + list(ELRCN_RUNS),
    }
    if SYNTHETIC:
        keys["dataset"] = [SYNTH_KEY]
    return json.dumps(keys, sort_keys=True)

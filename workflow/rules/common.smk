# Paths and parameter keys shared by the rules. Every artifact path carries the key of the
# parameters that made it (mer.files.param_key), chained from upstream.
import functools
import json
import os

import pandas as pd

from mer.crop import crop_enabled
from mer.files import param_key
from mer.flow import resolve_params
from mer.synth import SynthParams

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
    DATA_ROOT = DATASET["root"]
    ANNOTATIONS = DATASET["annotations"]
# The synthetic set is written as a table; casme2 and samm read the official sheets.
LOADER = "table" if SYNTHETIC else DATASET["loader"]
# Face crop of uncropped frames (mer.crop): resolved here, wired into the per-clip stage.
CROP = dict(
    DATASET["crop"],
    enabled=crop_enabled(DATASET["crop"]["enabled"], DATASET["loader"], DATASET["layout"]),
)


def dataset_inputs(wildcards):
    """The annotation table: made by the synth rule, or a real dataset's file on disk (an
    input either way, so that editing it reruns the samples table)."""
    return [ANNOTATIONS]


def dataset_previews():
    return [f"{DATA_DIR}/preview/synthetic_clips.png"] if SYNTHETIC else []


# ---- keys of the preprocessing stages, each chained from the one before -----------------
if SYNTHETIC:
    DATA_KEY = SYNTH_KEY
else:
    DATA_KEY = param_key(
        DATASET["loader"], {k: v for k, v in DATASET.items() if k not in ("name", "classes")}
    )
EVM_PARAMS = {**config["evm"], "size": config["preprocess"]["size"], "crop": CROP}
EVM_KEY = param_key(
    f"{config['evm']['mode']}-a{config['evm']['alpha']:g}", EVM_PARAMS, DATA_KEY
)
# Hash the resolved parameters, so that `params: {}` and the defaults written out agree.
FLOW_PARAMS = resolve_params(config["flow"]["method"], **config["flow"]["params"])
FLOW_KEY = param_key(config["flow"]["method"], FLOW_PARAMS, EVM_KEY)
MASK_KEY = param_key(f"t{config['masks']['threshold']}", config["masks"], FLOW_KEY)
SHARD_KEY = param_key(f"s{config['shards']['input_size']}", config["shards"], MASK_KEY)
EVM_DIR = f"{DATA_DIR}/evm/{EVM_KEY}"
FLOW_DIR = f"{DATA_DIR}/flow/{FLOW_KEY}"
MASK_DIR = f"{DATA_DIR}/masks/{MASK_KEY}"
SHARD_DIR = f"{DATA_DIR}/shards/{SHARD_KEY}"
# Everything upstream of the shards, stored in each shard for provenance.
SHARD_PROVENANCE = {
    "data_key": DATA_KEY,
    "evm": EVM_PARAMS,
    "flow": {"method": config["flow"]["method"], "params": FLOW_PARAMS},
    "masks": config["masks"],
    "shards": config["shards"],
}


def samples_table():
    """The checkpoint's samples table, indexed by sample (read once per table version)."""
    path = checkpoints.samples.get().output.table
    return _read_samples(path, os.path.getmtime(path))


@functools.lru_cache(maxsize=4)
def _read_samples(path, mtime):
    return pd.read_csv(path, sep="\t", dtype={"subject": str, "video": str}).set_index(
        "sample", drop=False
    )


def sample_row(wildcards):
    return samples_table().loc[wildcards.sample]


def subject_group(wildcards):
    """One cluster submission per subject for the per-sample preprocessing jobs."""
    return f"preprocess_{sample_row(wildcards).subject}"


def all_samples():
    return list(samples_table().index)


def all_subjects():
    return sorted(samples_table()["subject"].unique())


def subject_samples(wildcards):
    table = samples_table()
    return list(table.index[table["subject"] == wildcards.subject])

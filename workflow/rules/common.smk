# Paths and parameter keys shared by the rules. Every artifact path carries the key of the
# parameters that made it (mer.files.param_key), chained from upstream.
import json

from mer.crop import crop_enabled
from mer.files import param_key
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
    """The synthetic set is made by a rule; a real dataset's annotation file is on disk
    (an input, so that editing it reruns the samples table)."""
    return [SYNTH_DIR] if SYNTHETIC else [ANNOTATIONS]


def dataset_previews():
    return [f"{DATA_DIR}/preview/synthetic_clips.png"] if SYNTHETIC else []

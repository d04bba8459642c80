"""The experiment plan: every run a validated config asks for, by stage and parameter key.

`build_plan(config)` turns the workflow's config (validated by Snakemake, so the schema's
defaults are filled in) into a Plan; workflow/rules/common.smk asks it and only looks runs up
by the key in a job's path. Every artifact path carries the key of the parameters that made it
(mer.store.files.param_key), chained from upstream: dataset -> evm -> flow -> masks -> shards
-> train, clip or flow -> features -> baseline (the LOSO SVM), clip -> elrcn_inputs -> elrcn.

Experiments may override any section (alpha, flow method, ...), so several chains coexist.
Variants with identical parameters share one set of artifacts, named after the first
experiment planned with them, so the order of planning (configured experiments, then the
sweeps) decides names and must stay as it is.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field

import jsonschema

from mer.compute import TRAINING_NUMERICS
from mer.data.crop import crop_enabled
from mer.data.synth import SynthParams
from mer.learn.settings import trunk_settings
from mer.methods.registry import METHODS, paper_experiments
from mer.preprocess.flow import resolve_params
from mer.settings import schema
from mer.store.files import param_key

# OpenCV computes on its AVX2 code (mer.compute.cap_opencv): the artifacts it makes from the
# clips (crop, EVM, flows, and all they feed) carry that in their keys, so none made before
# the cap is taken for one made after.
OPENCV_SIMD = "avx2"
# What ELRCN-TE's per-sample inputs depend on; the rest of its section is its training.
ELRCN_INPUTS = ("steps", "size", "flow_method")
# Stage folders under results/<dataset>/ whose runs the plan keys.
STAGES = ("evm", "flow", "masks", "shards", "train", "features", "baseline", "elrcn")


@dataclass
class Plan:
    """What a config asks for. `runs[stage][key]` holds the parameters of one run of a stage;
    `experiments` and `sweeps[target]` map experiment names to the key of their folds."""

    config: dict
    data_key: str
    synth_key: str | None
    crop: dict
    runs: dict[str, dict[str, dict]] = field(default_factory=lambda: {s: {} for s in STAGES})
    experiments: dict[str, str] = field(default_factory=dict)
    sweeps: dict[str, dict[str, str]] = field(default_factory=dict)
    default_chain: dict[str, str] = field(default_factory=dict)
    _key_by_digest: dict[str, str] = field(default_factory=dict, repr=False)
    _trunk_owner: dict[str, str] = field(default_factory=dict, repr=False)

    def fold_stage(self, key: str) -> str:
        """The stage folder of an experiment's folds: train, baseline or elrcn."""
        return next(s for s in ("baseline", "elrcn", "train") if key in self.runs[s])

    def experiment_name(self, key: str) -> str:
        return self.runs[self.fold_stage(key)][key]["experiment"]

    def elrcn_inputs(self, inputs_key: str) -> dict:
        """The input parameters of an ELRCN inputs key."""
        return next(
            r["inputs"] for r in self.runs["elrcn"].values() if r["inputs_key"] == inputs_key
        )

    def keys(self) -> dict[str, list[str]]:
        """Every key the config produces, per stage folder: what `clean-cache` keeps."""
        keys = {stage: list(self.runs[stage]) for stage in STAGES}
        keys["elrcn_inputs"] = sorted({r["inputs_key"] for r in self.runs["elrcn"].values()})
        keys["evaluation"] = keys["train"] + keys["baseline"] + keys["elrcn"]
        if self.synth_key:
            keys["dataset"] = [self.synth_key]
        return keys

    # ---- planning ------------------------------------------------------------------------
    def _shared_key(self, key: str) -> str:
        """The key planned first with the same parameters (the hash after the last '-')."""
        return self._key_by_digest.setdefault(key.rsplit("-", 1)[1], key)

    def _settings_with(self, overrides: dict) -> dict:
        settings = copy.deepcopy(self.config)
        for section, values in overrides.items():
            settings[section] = {**settings[section], **values}
        return settings

    def add_chain(self, settings: dict) -> dict[str, str]:
        """Keys of evm -> flow -> masks -> shards for these settings, each chained from the last."""
        evm = {**settings["evm"], "size": settings["preprocess"]["size"], "crop": self.crop}
        evm_tag = f"{evm['mode']}-a{evm['alpha']:g}"
        evm_key = param_key(evm_tag, {**evm, "simd": OPENCV_SIMD}, self.data_key)
        self.runs["evm"][evm_key] = evm
        # Hash the resolved parameters, so that `params: {}` and the defaults written out agree.
        method = settings["flow"]["method"]
        flow = {"method": method, "params": resolve_params(method, **settings["flow"]["params"])}
        flow_key = param_key(method, flow, evm_key)
        self.runs["flow"][flow_key] = dict(flow, evm_key=evm_key)
        masks = settings["masks"]
        mask_key = param_key(f"t{masks['threshold']}", masks, flow_key)
        self.runs["masks"][mask_key] = dict(masks, evm_key=evm_key, flow_key=flow_key)
        shards = settings["shards"]
        shard_key = param_key(f"s{shards['input_size']}", shards, mask_key)
        # Everything upstream, stored in each shard for provenance.
        provenance = {
            "data_key": self.data_key, "evm": evm, "flow": flow, "masks": masks, "shards": shards
        }  # fmt: skip
        self.runs["shards"][shard_key] = dict(
            shards, flow_key=flow_key, mask_key=mask_key, provenance=provenance
        )
        return {"evm": evm_key, "flow": flow_key, "masks": mask_key, "shards": shard_key}

    def add_experiment(self, name: str, overrides: dict, where: str = "experiments") -> str:
        """Plan an experiment's runs; return the key of its folds."""
        overrides = dict(overrides)
        method = overrides.pop("method", "mscnn")
        check_settings(self.config, name, overrides, where)
        settings = self._settings_with(overrides)
        if method in METHODS:
            return self._add_descriptor(name, method, settings)
        if method == "elrcn":
            return self._add_elrcn(name, settings["elrcn"])
        chain = self.add_chain(settings)
        # The compute mode and the release's training numerics change the bits: such folds
        # are not reused.
        train = settings["train"]
        keyed = {**train, "compute": self.config["compute"], "numerics": TRAINING_NUMERICS}
        train_key = self._shared_key(param_key(name, keyed, chain["shards"]))
        if train_key not in self.runs["train"]:
            self.runs["train"][train_key] = dict(
                experiment=name, train=train, trunk_from=self._trunk_from(train_key, train, chain),
                **chain,
            )  # fmt: skip
        return train_key

    def _trunk_from(self, train_key: str, train: dict, chain: dict) -> str | None:
        """The experiment whose trained trunk this one takes (None: it trains its own):
        one that differs from an earlier one only in the head's settings refits the head."""
        trunk = trunk_settings(train)
        if trunk is None:
            return None
        owner = self._trunk_owner.setdefault(param_key("trunk", trunk, chain["shards"]), train_key)
        return None if owner == train_key else owner

    def _add_descriptor(self, name: str, method: str, settings: dict) -> str:
        """A descriptor + LOSO SVM experiment: its features (from the raw clips, or from the
        flow of its chain) and its folds."""
        section = settings[method]
        features = self.runs["features"]
        if METHODS[method].inputs == "clip":
            # The raw clip (no magnification, no flow), cropped and resized as configured.
            features_key = param_key(
                method, {**section, "crop": self.crop, "simd": OPENCV_SIMD}, self.data_key
            )
            features.setdefault(features_key, {"method": method, "params": section})
        else:  # the onset->apex flow artifact of the experiment's chain, shared with MSCNN
            flow_key = self.add_chain(settings)["flow"]
            features_key = param_key(method, section, flow_key)
            features.setdefault(
                features_key, {"method": method, "params": section, "flow_key": flow_key}
            )
        key = self._shared_key(param_key(name, section, features_key))
        self.runs["baseline"].setdefault(
            key, {"experiment": name, "method": method, "features_key": features_key, **section}
        )
        return key

    def _add_elrcn(self, name: str, section: dict) -> str:
        """An ELRCN-TE experiment: its inputs (from the raw clips) and its folds."""
        inputs = {k: section[k] for k in ELRCN_INPUTS}
        inputs_key = param_key(
            "elrcn", {**inputs, "crop": self.crop, "simd": OPENCV_SIMD}, self.data_key
        )
        train = {k: v for k, v in section.items() if k not in ELRCN_INPUTS}
        key = self._shared_key(
            param_key(name, {**train, "compute": self.config["compute"]}, inputs_key)
        )
        self.runs["elrcn"].setdefault(
            key, {"experiment": name, "inputs_key": inputs_key, "inputs": inputs, "train": train}
        )
        return key


@functools.cache
def _section_validator(section: str) -> jsonschema.Draft202012Validator:
    # One compiled validator per section: an experiment's overrides are checked against the
    # schema of the sections it sets (the rest is the config, validated by the Snakefile).
    full = schema()
    return jsonschema.Draft202012Validator(
        {"$defs": full.get("$defs", {}), **full["properties"][section]}
    )


def check_settings(config: dict, name: str, overrides: dict, where: str = "experiments") -> None:
    """A bad override fails when the plan is built, naming the experiment, the key and what
    is allowed."""
    for section, values in overrides.items():
        if section not in config:
            raise ValueError(f"config: {where}.{name} sets an unknown section {section!r}")
        errors = _section_validator(section).iter_errors({**config[section], **values})
        error = jsonschema.exceptions.best_match(errors)
        if error is not None:
            key = ".".join(str(part) for part in [section, *error.absolute_path])
            raise ValueError(f"config: {where}.{name} sets {key}: {error.message}")


def _check_synthetic(synthetic: dict, classes: list) -> None:
    # Fail when planning, naming the keys, rather than deep inside a job.
    if sorted(synthetic["class_priors"]) != sorted(classes):
        raise ValueError(
            f"config: synthetic.class_priors keys {sorted(synthetic['class_priors'])} must be "
            f"the dataset.classes {sorted(classes)}"
        )
    if synthetic["frames_min"] > synthetic["frames_max"]:
        raise ValueError("config: synthetic.frames_min must not exceed synthetic.frames_max")


def dataset_key(config: dict) -> tuple[str, str | None]:
    """The key of the dataset's samples (and of the synthetic set's folder, else None)."""
    dataset = config["dataset"]
    if dataset["loader"] == "synthetic":
        _check_synthetic(config["synthetic"], dataset["classes"])
        seed = SynthParams.from_dict(config["synthetic"]).seed
        synth_key = param_key(f"seed{seed}", config["synthetic"])
        return synth_key, synth_key
    rest = {k: v for k, v in dataset.items() if k not in ("name", "classes")}
    return param_key(dataset["loader"], rest), None


def build_plan(config: dict) -> Plan:
    """The plan of a validated config: the default chain, the configured experiments, then
    the named targets' variants (docs/experiments.md)."""
    data_key, synth_key = dataset_key(config)
    dataset = config["dataset"]
    crop = dict(
        dataset["crop"],
        enabled=crop_enabled(dataset["crop"]["enabled"], dataset["loader"], dataset["layout"]),
    )
    plan = Plan(config=config, data_key=data_key, synth_key=synth_key, crop=crop)
    plan.default_chain = plan.add_chain(config)
    experiments = config["experiments"]
    plan.experiments = {name: plan.add_experiment(name, o) for name, o in experiments.items()}
    mscnn = {k: v for k, v in experiments.get("mscnn", {}).items() if k != "method"}
    plan.sweeps["alpha_sweep"] = {
        f"alpha_{a:g}": plan.add_experiment(
            f"alpha_{a:g}", {**mscnn, "evm": {**mscnn.get("evm", {}), "alpha": a}}
        )
        for a in config["sweeps"]["alpha"]
    }
    for target in ("ablation", "beyond"):
        # The ablation shows the configured method beside its variants.
        variants = {"mscnn": mscnn} if target == "ablation" else {}
        variants.update(config["sweeps"].get(target, {}))
        plan.sweeps[target] = {
            name: plan.add_experiment(name, o, where=f"sweeps.{target}")
            for name, o in variants.items()
        }
    # `paper`: the configured experiments plus one per registered comparison row, named after
    # the method (the summary finds each row's published numbers by that name); ELRCN-TE
    # trains a network per fold (its own rules), so it is not a registry entry.
    paper = {**experiments}
    # The recommended model (docs/experiments.md, "Beyond the method") beside the method's rows.
    if "mer_best" in config["sweeps"].get("beyond", {}):
        paper.setdefault("mer_best", config["sweeps"]["beyond"]["mer_best"])
    paper.update({m: {"method": m} for m in paper_experiments() if m not in experiments})
    paper.setdefault("elrcn", {"method": "elrcn"})
    plan.sweeps["paper"] = {name: plan.add_experiment(name, o) for name, o in paper.items()}
    return plan

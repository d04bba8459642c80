"""The method registry agrees with the config, its schema and the published rows; the generic
verbs (`mer method-features`, `mer svm-loso`) serve every registered method, and the LOSO SVM
never lets the held-out subject's features into its scaler or its fit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.preprocessing
import yaml

from mer.cli import main
from mer.evaluation.published import PUBLISHED
from mer.methods.registry import INPUTS, METHODS, method, paper_experiments

REPO = Path(__file__).resolve().parents[2]


def schema() -> dict:
    return yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def test_every_method_has_a_config_section_with_its_defaults_and_a_schema_entry():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    properties = schema()["properties"]
    for name, entry in METHODS.items():
        assert entry.inputs in INPUTS and "C" in entry.defaults
        assert config[name] == entry.defaults, name
        section = properties[name]["properties"]
        assert {key: spec["default"] for key, spec in section.items()} == entry.defaults, name
        assert entry.length(entry.defaults) > 0


def test_an_experiment_can_take_every_registered_method_and_override_its_section():
    ref = schema()["properties"]["experiments"]["additionalProperties"]["$ref"]
    experiment = schema()["$defs"][ref.rsplit("/", 1)[1]]["properties"]
    # mscnn and elrcn train networks (their own rules); every other method is an entry
    assert set(experiment["method"]["enum"]) == {"mscnn", "elrcn", *METHODS}
    assert set(METHODS) <= set(experiment)


def test_every_paper_row_maps_to_the_experiment_named_after_its_method():
    rows = {row.method: row.experiment for row in PUBLISHED}
    for experiment, row in paper_experiments().items():
        assert rows[row] == experiment


def test_an_unknown_method_is_refused_naming_the_registered_ones():
    with pytest.raises(ValueError, match="hoof"):
        method("nope")


# --- the generic verbs ------------------------------------------------------------------------


def write_frames(folder: Path, clip: np.ndarray) -> None:
    import cv2

    folder.mkdir(parents=True)
    for index, frame in enumerate(clip, start=1):
        cv2.imwrite(str(folder / f"img{index}.png"), frame)


def test_method_features_of_a_clip_and_of_a_flow_have_the_registered_length(tmp_path):
    rng = np.random.default_rng(0)
    write_frames(tmp_path / "clip", rng.integers(0, 255, (8, 40, 40)).astype(np.uint8))
    flow = tmp_path / "flow.npz"
    np.savez(flow, flow_uv=rng.normal(size=(40, 40, 2)).astype(np.float32))
    for name, entry in METHODS.items():
        params = {**entry.defaults, **({"size": 32} if "size" in entry.defaults else {})}
        source = tmp_path / "clip" if entry.inputs == "clip" else flow
        out = tmp_path / f"{name}.npy"
        frames = ["--onset", "2", "--offset", "7"] if entry.inputs == "clip" else []
        frames += ["--fps", "200"] if entry.needs_fps else []
        arguments = ["method-features", name, str(source), str(out), "--params-json"]
        assert main([*arguments, json.dumps(params), *frames]) == 0
        assert np.load(out).shape == (entry.length(params),), name


def test_svm_loso_never_lets_a_poisoned_held_out_subject_into_the_scaler(tmp_path, monkeypatch):
    """The held-out subject's features are 1e6: a scaler fitted on them would have a mean
    near 1e5 or more. Every fold's scaler must have seen the training subjects only."""
    rng = np.random.default_rng(1)
    classes = ["others", "surprise"]
    rows = [(f"s{s}", f"s{s}_c{i}", classes[i % 2]) for s in range(3) for i in range(4)]
    samples = pd.DataFrame(rows, columns=["subject", "sample", "label"])
    samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    (tmp_path / "features").mkdir()
    for _, sample, label in rows:
        vector = rng.normal(classes.index(label) * 3, 1, 10)
        np.save(tmp_path / "features" / f"{sample}.npy", vector.astype(np.float32))
    means = []

    class SpyScaler(sklearn.preprocessing.StandardScaler):
        def fit(self, X, y=None, sample_weight=None):
            fitted = super().fit(X, y, sample_weight)
            means.append(np.abs(fitted.mean_).max())
            return fitted

    monkeypatch.setattr(sklearn.preprocessing, "StandardScaler", SpyScaler)
    for held_out in ("s0", "s1", "s2"):
        poisoned = tmp_path / f"poisoned_{held_out}"
        poisoned.mkdir()
        for subject, sample, _ in rows:
            vector = np.load(tmp_path / "features" / f"{sample}.npy")
            np.save(poisoned / f"{sample}.npy", vector + 1e6 * (subject == held_out))
        out = tmp_path / f"out_{held_out}"
        means.clear()
        arguments = ["svm-loso", str(out), "--samples-tsv", str(tmp_path / "samples.tsv")]
        arguments += ["--features-dir", str(poisoned), "--classes", "others,surprise"]
        assert main([*arguments, "--method", "hoof"]) == 0
        fold = json.loads((out / held_out / "fold.json").read_text())
        assert fold["method"] == "hoof+linear_svm" and held_out not in fold["train_subjects"]
        # Folds run in subject order: the one holding out the poisoned subject never saw 1e6;
        # every other fold did (so the spy would have caught a leak).
        seen_poison = [mean > 1e4 for mean in means]
        assert seen_poison == [subject != held_out for subject in ("s0", "s1", "s2")]

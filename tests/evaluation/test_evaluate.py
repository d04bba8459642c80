"""Evaluation: pooled metrics agree with scikit-learn, pooled and per-subject means stay apart,
seeds are summarised correctly, bad prediction files are named, the summary states the
protocol and labels the published numbers."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    precision_recall_fscore_support,
    recall_score,
)
from sklearn.metrics import confusion_matrix as sklearn_confusion

from mer.evaluation import evaluate, figures
from mer.evaluation.metrics import (
    HEADLINE_METRICS,
    SUBJECT_MEAN_LABEL,
    across_seeds,
    per_subject,
    pooled_metrics,
)
from mer.evaluation.published import published_table
from mer.evaluation.summary import read_metrics, summary, sweep_table, write_summary

CLASSES = ["happiness", "surprise", "disgust", "repression", "others"]


def _predictions(true_labels, predicted_labels, subjects=None) -> pd.DataFrame:
    n = len(true_labels)
    subjects = subjects if subjects is not None else ["s1"] * n
    return pd.DataFrame(
        {
            "sample": [f"clip{i}" for i in range(n)],
            "subject": list(subjects),
            "true_label": list(true_labels),
            "predicted_label": list(predicted_labels),
        }
    )


def _assert_agrees_with_sklearn(true_labels, predicted_labels, classes):
    metrics = pooled_metrics(_predictions(true_labels, predicted_labels), classes)
    in_truth = [c for c in classes if c in set(true_labels)]
    assert metrics["classes_in_truth"] == in_truth
    assert metrics["accuracy"] == pytest.approx(accuracy_score(true_labels, predicted_labels))
    assert metrics["macro_f1"] == pytest.approx(
        f1_score(true_labels, predicted_labels, labels=in_truth, average="macro", zero_division=0)
    )
    assert metrics["uar"] == pytest.approx(
        recall_score(true_labels, predicted_labels, labels=in_truth, average="macro")
    )
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": same value
        warnings.simplefilter("ignore", UserWarning)
        balanced_accuracy = balanced_accuracy_score(true_labels, predicted_labels)
    assert metrics["uar"] == pytest.approx(balanced_accuracy)
    assert metrics["weighted_f1"] == pytest.approx(
        f1_score(true_labels, predicted_labels, labels=classes, average="weighted", zero_division=0)
    )
    precision, recall, f1, support = precision_recall_fscore_support(
        true_labels, predicted_labels, labels=classes, zero_division=np.nan
    )
    per_class = metrics["per_class"]
    assert list(per_class.index) == list(classes)
    np.testing.assert_allclose(per_class["precision"], precision, equal_nan=True)
    np.testing.assert_allclose(per_class["recall"], recall, equal_nan=True)
    np.testing.assert_allclose(per_class["f1"], f1, equal_nan=True)
    np.testing.assert_array_equal(per_class["support"], support)
    counts = sklearn_confusion(true_labels, predicted_labels, labels=classes)
    np.testing.assert_array_equal(metrics["confusion"].to_numpy(), counts)
    assert list(metrics["confusion"].index) == list(metrics["confusion"].columns) == classes
    row_sums = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected_shares = np.where(row_sums > 0, counts / row_sums, np.nan)
    np.testing.assert_allclose(
        metrics["confusion_normalised"].to_numpy(), expected_shares, equal_nan=True
    )


@pytest.mark.filterwarnings("ignore:A single label was found")
@settings(max_examples=40, deadline=None)
@given(st.data())
def test_metrics_agree_with_sklearn_on_random_predictions(data):
    n_classes = data.draw(st.integers(2, 7), label="n_classes")
    classes = [f"c{i}" for i in range(n_classes)]
    n = data.draw(st.integers(1, 60), label="n")
    label = st.sampled_from(classes)
    true_labels = data.draw(st.lists(label, min_size=n, max_size=n), label="true")
    predicted_labels = data.draw(st.lists(label, min_size=n, max_size=n), label="predicted")
    _assert_agrees_with_sklearn(true_labels, predicted_labels, classes)


@pytest.mark.parametrize("n_classes", [2, 3, 5, 7])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_agree_with_sklearn_with_a_class_never_predicted_and_one_absent(n_classes, seed):
    rng = np.random.default_rng(seed)
    classes = [f"class{i}" for i in range(n_classes)]
    # The last class never occurs in the truth, the first is never predicted.
    true_labels = rng.choice(classes[:-1], size=40).tolist()
    predicted_labels = rng.choice(classes[1:], size=40).tolist()
    _assert_agrees_with_sklearn(true_labels, predicted_labels, classes)
    metrics = pooled_metrics(_predictions(true_labels, predicted_labels), classes)
    assert np.isnan(metrics["per_class"].loc["class0", "precision"])  # never predicted
    assert np.isnan(metrics["per_class"].loc[classes[-1], "recall"])  # absent from the truth


def test_macro_f1_leaves_out_a_class_absent_from_the_truth_but_counts_its_false_positives():
    # Truth: a, a, b, b. Prediction: a, c, b, b. c is predicted but never true.
    metrics = pooled_metrics(
        _predictions(["a", "a", "b", "b"], ["a", "c", "b", "b"]), ["a", "b", "c"]
    )
    f1_a = 2 * 1 / (2 * 1 + 0 + 1)
    assert metrics["macro_f1"] == pytest.approx((f1_a + 1.0) / 2)
    assert metrics["uar"] == pytest.approx((0.5 + 1.0) / 2)
    # scikit-learn's default macro average also counts c (F1 0): a different number.
    assert (
        f1_score(["a", "a", "b", "b"], ["a", "c", "b", "b"], average="macro") < metrics["macro_f1"]
    )


def test_unknown_labels_are_an_error():
    with pytest.raises(ValueError, match="not among the classes"):
        pooled_metrics(_predictions(["a"], ["z"]), ["a", "b"])


# --------------------------------------------------------------------------------------------
# Pooled versus mean over subjects


def _unbalanced_two_subjects() -> pd.DataFrame:
    # s1: one clip, correct. s2: nine clips, three correct.
    true_labels = ["a"] + ["a"] * 3 + ["b"] * 6
    predicted_labels = ["a"] + ["a"] * 3 + ["a"] * 6
    subjects = ["s1"] + ["s2"] * 9
    return _predictions(true_labels, predicted_labels, subjects)


def test_pooled_accuracy_differs_from_the_mean_of_per_subject_accuracies():
    predictions = _unbalanced_two_subjects()
    pooled = pooled_metrics(predictions, ["a", "b"])
    table = per_subject(predictions, ["a", "b"])
    assert pooled["accuracy"] == pytest.approx(4 / 10)
    subject_rows = table[table["scope"] == "held-out subject"].set_index("subject")
    assert subject_rows.loc["s1", "accuracy"] == 1.0
    assert subject_rows.loc["s2", "accuracy"] == pytest.approx(3 / 9)
    assert list(subject_rows["n"]) == [1, 9]
    mean_row = table.iloc[-1]
    assert mean_row["subject"] == SUBJECT_MEAN_LABEL
    assert mean_row["scope"] == "mean over subjects"
    assert mean_row["accuracy"] == pytest.approx((1 + 3 / 9) / 2)
    assert mean_row["accuracy"] != pytest.approx(pooled["accuracy"])
    assert mean_row["n"] == 10


def test_experiment_scores_keep_pooled_and_subject_mean_under_separate_names():
    predictions = _unbalanced_two_subjects().assign(seed=0)
    scores = evaluate.score_experiment(predictions, ["a", "b"], "toy")
    pooled = scores.metrics["pooled"]["across_seeds"]["accuracy"]["mean"]
    subject_mean = scores.metrics["mean_over_subjects"]["across_seeds"]["accuracy"]["mean"]
    assert pooled == pytest.approx(0.4)
    assert subject_mean == pytest.approx((1 + 3 / 9) / 2)
    assert scores.metrics["pooled"]["per_seed"]["0"]["accuracy"] == pytest.approx(0.4)
    assert scores.per_subject["subject"].iloc[-1] == SUBJECT_MEAN_LABEL


# --------------------------------------------------------------------------------------------
# Seeds


def test_across_seeds_gives_mean_and_sample_std():
    per_seed = {
        0: {"accuracy": 0.5, "macro_f1": 0.4, "uar": 0.3, "weighted_f1": 0.45},
        1: {"accuracy": 0.7, "macro_f1": 0.2, "uar": 0.5, "weighted_f1": 0.55},
        2: {"accuracy": 0.6, "macro_f1": 0.3, "uar": 0.4, "weighted_f1": 0.65},
    }
    seeds_summary = across_seeds(per_seed)
    for name in HEADLINE_METRICS:
        values = [per_seed[s][name] for s in per_seed]
        assert seeds_summary[name]["mean"] == pytest.approx(np.mean(values))
        assert seeds_summary[name]["std"] == pytest.approx(np.std(values, ddof=1))
        assert seeds_summary[name]["n_seeds"] == 3


def test_across_seeds_with_one_seed_has_no_std():
    seeds_summary = across_seeds(
        {4: {"accuracy": 0.5, "macro_f1": 0.4, "uar": 0.3, "weighted_f1": 0.2}}
    )
    assert seeds_summary["accuracy"] == {"mean": 0.5, "std": None, "n_seeds": 1}


# --------------------------------------------------------------------------------------------
# Reading prediction files


def _write_folds(seed_dir: Path, predictions: pd.DataFrame, classes=("a", "b")) -> None:
    for subject, fold in predictions.groupby("subject"):
        fold = fold.copy()
        for name in classes:
            fold[f"p_{name}"] = (fold["predicted_label"] == name).astype(float)
        (seed_dir / subject).mkdir(parents=True, exist_ok=True)
        fold.to_csv(seed_dir / subject / "predictions.csv", index=False)


def test_read_predictions_concatenates_folds_and_seeds(tmp_path):
    predictions = _unbalanced_two_subjects()
    for seed in (0, 3):
        _write_folds(tmp_path / f"seed{seed}", predictions)
    table = evaluate.read_predictions({0: tmp_path / "seed0", 3: tmp_path / "seed3"})
    assert len(table) == 2 * len(predictions)
    assert sorted(table["seed"].unique()) == [0, 3]
    assert {"p_a", "p_b"} <= set(table.columns)


def test_read_predictions_keeps_subject_ids_as_text(tmp_path):
    predictions = _predictions(["a", "b"], ["a", "a"], ["01", "02"])
    _write_folds(tmp_path / "seed0", predictions)
    table = evaluate.read_predictions({0: tmp_path / "seed0"})
    assert sorted(table["subject"]) == ["01", "02"]


def test_a_missing_fold_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    (tmp_path / "seed0" / "s3").mkdir()
    with pytest.raises(ValueError, match=r"s3/predictions\.csv is missing"):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_an_expected_subject_without_a_fold_directory_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    with pytest.raises(ValueError, match=r"s9/predictions\.csv is missing"):
        evaluate.read_predictions({0: tmp_path / "seed0"}, subjects=["s1", "s2", "s9"])


def test_an_empty_file_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    (tmp_path / "seed0" / "s2" / "predictions.csv").write_text("")
    with pytest.raises(ValueError, match=r"s2/predictions\.csv is unreadable"):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_a_header_only_file_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    (tmp_path / "seed0" / "s2" / "predictions.csv").write_text(
        "sample,subject,true_label,predicted_label\n"
    )
    with pytest.raises(ValueError, match=r"s2/predictions\.csv has no prediction rows"):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_missing_columns_name_the_file_and_the_columns(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    path = tmp_path / "seed0" / "s1" / "predictions.csv"
    pd.read_csv(path).drop(columns="predicted_label").to_csv(path, index=False)
    with pytest.raises(
        ValueError, match=r"s1/predictions\.csv lacks the columns \['predicted_label'\]"
    ):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_a_label_outside_the_classes_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    with pytest.raises(ValueError, match=r"s2/predictions\.csv: true_label values \['b'\]"):
        evaluate.read_predictions({0: tmp_path / "seed0"}, classes=["a"])


def test_a_sample_predicted_in_two_folds_is_an_error(tmp_path):
    predictions = _unbalanced_two_subjects()
    _write_folds(tmp_path / "seed0", predictions)
    s2 = tmp_path / "seed0" / "s2" / "predictions.csv"
    fold = pd.read_csv(s2)
    fold.loc[0, "sample"] = "clip0"  # clip0 is s1's
    fold.to_csv(s2, index=False)
    with pytest.raises(ValueError, match="clip0 in folds"):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_a_fold_holding_another_subject_names_the_file(tmp_path):
    _write_folds(tmp_path / "seed0", _unbalanced_two_subjects())
    path = tmp_path / "seed0" / "s1" / "predictions.csv"
    fold = pd.read_csv(path)
    fold["subject"] = "s2"
    fold.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"s1/predictions\.csv: rows of subjects \['s2'\]"):
        evaluate.read_predictions({0: tmp_path / "seed0"})


def test_seeds_that_predict_different_samples_are_an_error(tmp_path):
    predictions = _unbalanced_two_subjects()
    _write_folds(tmp_path / "seed0", predictions)
    _write_folds(tmp_path / "seed1", predictions[predictions["sample"] != "clip5"])
    with pytest.raises(ValueError, match="predict different samples"):
        evaluate.evaluate_experiment(
            {0: tmp_path / "seed0", 1: tmp_path / "seed1"}, ["a", "b"], tmp_path / "out", "x"
        )


# --------------------------------------------------------------------------------------------
# One experiment's files, plots


def _random_experiment(root: Path, seeds=(0, 1), n_subjects=4, classes=CLASSES) -> dict:
    rng = np.random.default_rng(7)
    n = 12 * n_subjects
    true_labels = rng.choice(classes[:-1], size=n)  # the last class never occurs
    subjects = [f"sub{i % n_subjects + 1:02d}" for i in range(n)]
    seed_dirs = {}
    for seed in seeds:
        predicted = np.where(rng.random(n) < 0.5, true_labels, rng.choice(classes, size=n))
        seed_dirs[seed] = root / f"seed{seed}"
        _write_folds(seed_dirs[seed], _predictions(true_labels, predicted, subjects), classes)
    return seed_dirs


def test_evaluate_experiment_writes_every_output(tmp_path):
    seed_dirs = _random_experiment(tmp_path / "train")
    out_dir = tmp_path / "eval"
    metrics = evaluate.evaluate_experiment(seed_dirs, CLASSES, out_dir, "mscnn")
    for name in (
        "metrics.json",
        "per_class.csv",
        "per_subject.csv",
        "confusion.csv",
        "confusion_normalised.csv",
        "confusion.png",
        "per_class_f1.png",
    ):
        assert (out_dir / name).stat().st_size > 0, name
    assert not [p for p in out_dir.iterdir() if p.name.startswith(".")]  # no temp files left
    assert json.loads((out_dir / "metrics.json").read_text()) == metrics
    assert metrics["experiment"] == "mscnn"
    assert (metrics["n_seeds"], metrics["n_folds"], metrics["n_samples"]) == (2, 4, 48)
    per_seed = metrics["pooled"]["per_seed"]
    for name in HEADLINE_METRICS:
        values = [per_seed[str(s)][name] for s in seed_dirs]
        assert metrics["pooled"]["across_seeds"][name]["mean"] == pytest.approx(np.mean(values))
        assert metrics["pooled"]["across_seeds"][name]["std"] == pytest.approx(
            np.std(values, ddof=1)
        )
    confusion = pd.read_csv(out_dir / "confusion.csv", index_col=0)
    assert list(confusion.columns) == CLASSES
    assert confusion.to_numpy().sum() == 2 * 48  # each sample once per seed
    per_class = pd.read_csv(out_dir / "per_class.csv")
    assert set(per_class["seed"]) == {0, 1} and len(per_class) == 2 * len(CLASSES)
    per_subject = pd.read_csv(out_dir / "per_subject.csv")
    assert len(per_subject) == 2 * (4 + 1)


def _png_written(path: Path) -> bool:
    return path.stat().st_size > 1000 and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_are_written_as_png(tmp_path):
    rng = np.random.default_rng(0)
    true_labels = rng.choice(CLASSES[:-1], size=30)
    metrics = pooled_metrics(_predictions(true_labels, rng.choice(CLASSES, 30)), CLASSES)
    figures.plot_confusion(
        metrics["confusion"], metrics["confusion_normalised"], tmp_path / "c.png", "toy"
    )
    figures.plot_per_class_f1(metrics["per_class"], tmp_path / "f1.png", "toy")
    assert _png_written(tmp_path / "c.png") and _png_written(tmp_path / "f1.png")


def _random_metrics(tmp_path: Path, name: str, seeds=(0, 1)) -> dict:
    """metrics.json content of a random experiment, scored without writing plots."""
    seed_dirs = _random_experiment(tmp_path / name, seeds=seeds)
    predictions = evaluate.read_predictions(seed_dirs)
    return evaluate.score_experiment(predictions, CLASSES, name).metrics


def test_plot_sweep_writes_a_png(tmp_path):
    points = {
        float(alpha): _random_metrics(tmp_path, f"alpha{alpha}") for alpha in (0, 2, 4, 8, 16, 32)
    }
    figures.plot_sweep(points, tmp_path / "sweep.png", parameter="alpha")
    assert _png_written(tmp_path / "sweep.png")
    table = sweep_table(points)
    assert list(table["alpha"]) == [0, 2, 4, 8, 16, 32]
    assert (
        table.loc[3, "macro_f1_mean"] == points[8.0]["pooled"]["across_seeds"]["macro_f1"]["mean"]
    )


# --------------------------------------------------------------------------------------------
# Published numbers and the summary


def test_published_numbers_are_the_authors_and_missing_ones_stay_missing():
    table = published_table()
    casme = table[table["dataset"] == "CASME II"].set_index("method")
    samm = table[table["dataset"] == "SAMM"].set_index("method")
    assert casme.loc["MSCNN", "f1"] == 0.5650 and np.isnan(casme.loc["MSCNN", "accuracy"])
    assert casme.loc["ELRCN-TE", "accuracy"] == 0.5244
    assert np.isnan(casme.loc["Adaptive MM + LBP-TOP", "f1"])
    assert samm.loc["MSCNN", "f1"] == 0.3173 and samm.loc["HOOF", "accuracy"] == 0.4217
    assert np.isnan(samm.loc["EVM + optical flow", "accuracy"])
    assert len(casme) == 6 and len(samm) == 5


@pytest.fixture
def two_experiments(tmp_path) -> dict[str, Path]:
    """metrics.json paths of two experiments: mscnn with three seeds, evm_flow with one."""
    paths = {}
    for name, seeds in (("mscnn", (0, 1, 2)), ("evm_flow", (0,))):
        paths[name] = tmp_path / "eval" / name / "metrics.json"
        paths[name].parent.mkdir(parents=True)
        paths[name].write_text(json.dumps(_random_metrics(tmp_path, name, seeds)))
    return paths


def test_summary_states_protocol_experiments_and_labelled_published_numbers(
    two_experiments, tmp_path
):
    table = write_summary(
        two_experiments, "synthetic", tmp_path / "summary.md", tmp_path / "summary.tsv"
    )
    markdown = (tmp_path / "summary.md").read_text()
    assert "Leave-one-subject-out" in markdown
    assert "validation split of whole training subjects only" in markdown
    assert "fixed 1/255" in markdown and "over-sampling" in markdown
    for name in two_experiments:
        assert f"| {name} |" in markdown
    assert "Published by the method's authors on CASME II / SAMM" in markdown
    published_part = markdown.split("Published by the method's authors")[1]
    ours_part = markdown.split("Published by the method's authors")[0]
    for value in ("0.5650", "0.5244", "0.3173", "0.4217", "0.1768"):
        assert value in published_part and value not in ours_part
    assert "not comparable with the results above" in published_part
    assert "synthetic data" in published_part
    assert "Mean of per-subject scores (not pooled)" in markdown
    # Three seeds get a ±, one seed none.
    mscnn_line = next(line for line in markdown.splitlines() if line.startswith("| mscnn |"))
    evm_line = next(line for line in markdown.splitlines() if line.startswith("| evm_flow |"))
    assert "±" in mscnn_line and "±" not in evm_line
    tsv = pd.read_csv(tmp_path / "summary.tsv", sep="\t")
    assert list(tsv["experiment"]) == ["mscnn", "evm_flow"]
    assert list(tsv["n_seeds"]) == [3, 1]
    assert np.isnan(tsv.loc[1, "accuracy_std"]) and tsv.loc[0, "accuracy_std"] > 0
    assert list(table.columns) == list(tsv.columns)


def test_summary_on_casme2_shows_its_table_without_the_synthetic_warning(two_experiments):
    metrics = {name: read_metrics(path) for name, path in two_experiments.items()}
    _, markdown = summary(metrics, "casme2")
    published_part = markdown.split("Published by the method's authors")[1]
    assert "### Published on CASME II" in published_part
    assert "### Published on SAMM" not in published_part
    assert "synthetic" not in markdown


def test_summary_can_leave_out_the_published_numbers(two_experiments):
    metrics = {name: read_metrics(path) for name, path in two_experiments.items()}
    _, markdown = summary(metrics, "synthetic", published=False)
    assert "Published" not in markdown and "0.5650" not in markdown
    assert "| mscnn |" in markdown and "Leave-one-subject-out" in markdown


def test_summary_shows_each_published_row_beside_our_experiment_of_that_row(two_experiments):
    metrics = {name: read_metrics(path) for name, path in two_experiments.items()}
    _, markdown = summary(metrics, "samm")
    rows = {line.split(" | ")[0]: line for line in markdown.splitlines() if line.startswith("| ")}
    evm_flow = metrics["evm_flow"]["pooled"]["across_seeds"]
    ours = f"{evm_flow['macro_f1']['mean']:.4f} | {evm_flow['accuracy']['mean']:.4f} |"
    assert rows["| EVM + optical flow"].endswith(f"| evm_flow | {ours}")
    # A row whose experiment did not run says so; a value the paper lacks stays n/a.
    assert rows["| HOOF"].endswith("| 0.33 | 0.4217 | hoof | not run | not run |")
    assert "| 0.3569 | n/a |" in rows["| EVM + optical flow"]

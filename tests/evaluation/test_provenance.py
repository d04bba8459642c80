"""Provenance of results: metrics.json lists the folds' compute fingerprints, summary.md states
them, and compare-results finds the folds of two results folders that differ."""

import json

from mer.evaluation import provenance
from mer.evaluation.cli import cmd_compare_results

FINGERPRINT = {
    "mode": "portable", "cpu_family": "x86-64-avx2", "cpu_model": "A", "kernel_isa": "AVX2",
    "device": "cpu", "threads": 1, "precision": "fp32", "torch": "2.14.1", "onednn": "3.12.0",
    "mkl": "2024.2", "mer": "0.1.0", "commit": "abc", "cuda": None, "cudnn": None,
}  # fmt: skip
PREDICTIONS = "sample,subject,true_label,predicted_label,p_a,p_b\nc1,s1,a,a,0.75,0.25\n"
HISTORY = "epoch,train_loss,seconds\n1,0.5,{seconds}\n"


def write_fold(
    root,
    subject,
    predictions=PREDICTIONS,
    seconds=1.0,
    fingerprint=FINGERPRINT,
    key="mscnn-0a1b2c3d",
):
    fold = root / "train" / key / "seed0" / subject
    fold.mkdir(parents=True)
    (fold / "predictions.csv").write_text(predictions)
    (fold / "history.csv").write_text(HISTORY.format(seconds=seconds))
    (fold / "fold.json").write_text(json.dumps({"compute": fingerprint}))
    return fold


def test_identical_folds_agree_whatever_their_seconds(tmp_path, capsys):
    for root, seconds in ((tmp_path / "a", 1.0), (tmp_path / "b", 7.5)):
        write_fold(root, "s1", seconds=seconds)
    other_cpu = {**FINGERPRINT, "cpu_model": "B"}  # another CPU of the family
    write_fold(tmp_path / "a", "s2")
    write_fold(tmp_path / "b", "s2", fingerprint=other_cpu)
    report = provenance.compare_results(tmp_path / "a", tmp_path / "b")
    assert (report["compared"], report["identical"], report["differing"]) == (4, 4, [])
    assert report["fingerprint_differs"] == {}


def test_a_differing_fold_and_fingerprint_are_named(tmp_path, capsys):
    write_fold(tmp_path / "a", "s1")
    changed = PREDICTIONS.replace("0.75,0.25", "0.74,0.26")
    write_fold(tmp_path / "b", "s1", predictions=changed, fingerprint={**FINGERPRINT, "torch": "x"})
    write_fold(tmp_path / "a", "s2")
    report = provenance.compare_results(tmp_path / "a", tmp_path / "b")
    assert report["differing"] == ["train/mscnn/seed0/s1/predictions.csv"]
    assert report["fingerprint_differs"] == {"torch": ("2.14.1", "x")}
    assert len(report["only_first"]) == 2

    class Args:
        first, second = tmp_path / "a", tmp_path / "b"

    assert cmd_compare_results(Args) == 1
    assert "differs: train/mscnn/seed0/s1/predictions.csv" in capsys.readouterr().out


def test_fingerprints_are_counted_per_fold_and_missing_ones_said(tmp_path):
    folds = [write_fold(tmp_path, s) for s in ("s1", "s2")]
    (tmp_path / "s3").mkdir()  # a descriptor fold: no fold.json
    found = provenance.fold_fingerprints([*folds, tmp_path / "s3"])
    assert found == [{"fingerprint": FINGERPRINT, "folds": 2}, {"fingerprint": None, "folds": 1}]
    lines = "\n".join(provenance.compute_lines({"mscnn": {"compute": found}}))
    assert "mscnn (2 folds): portable mode on A (x86-64-avx2" in lines
    assert provenance.NO_TORCH in lines and "bit for bit" in lines


def test_folds_of_another_mode_pair_by_experiment_and_their_fingerprints_differ(tmp_path):
    write_fold(tmp_path / "a", "s1")
    fast = {**FINGERPRINT, "mode": "fast", "kernel_isa": "AVX512"}
    write_fold(tmp_path / "b", "s1", fingerprint=fast, key="mscnn-99998888")
    write_fold(tmp_path / "b", "s2")
    report = provenance.compare_results(tmp_path / "a", tmp_path / "b")
    assert report["compared"] == 2 and report["fingerprint_differs"]["mode"] == ("portable", "fast")
    assert report["only_second"] == sorted(
        ["train/mscnn/seed0/s2/history.csv", "train/mscnn/seed0/s2/predictions.csv"]
    )

    class Args:
        first, second = tmp_path / "a", tmp_path / "b"

    assert cmd_compare_results(Args) == 1

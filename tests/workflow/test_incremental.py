"""Incremental-rerun guarantees: a parameter change plans exactly the jobs of its
stage and what follows (dry-run job tables), switching back or adding a twin experiment costs
nothing, and a run killed mid-training resumes without redoing finished folds. Preprocessing
(evm, flow, masks) and the descriptors' features run one job per subject and stage,
so their counts are subjects."""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import REPO, make_tiny, run_snakemake, snakemake_command
from mer.data.samples import read_samples

pytestmark = pytest.mark.slow

# The reporting tail every change to a configured experiment reaches (rule all depends on all).
REPORT_TAIL = {"summary": 1, "report": 1, "all": 1}
PREPROCESSING = ("synth", "samples", "preview_synth", "evm", "flow", "masks", "contact_sheet")


def parse_job_stats(output: str) -> dict[str, int]:
    """Rule -> job count of Snakemake's "Job stats" table (empty: nothing to be done)."""
    table = re.search(r"job\s+count\n[-\s]+\n(.*?)\n\s*total", output, re.S)
    if table is None:
        assert "Nothing to be done" in output, output
        return {}
    return {rule: int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table.group(1), re.M)}


def planned_jobs(workdir, *targets) -> dict[str, int]:
    """Rule -> job count of a dry run of these targets (default: rule all)."""
    result = run_snakemake(workdir, *targets, "-n", "--quiet", "rules")
    return parse_job_stats(result.stdout + result.stderr)


def assert_reruns(jobs: dict, expected: dict, not_rerun=()) -> None:
    """These stages rerun with these job counts; those upstream of the change do not."""
    assert {rule: jobs.get(rule) for rule in expected} == expected, jobs
    assert not set(not_rerun) & set(jobs), jobs


def edit_config(workdir, **sections):
    config = yaml.safe_load((workdir / "config.yaml").read_text())
    for section, values in sections.items():
        config[section].update(values)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    return config


def planned_with(workdir, **sections) -> dict[str, int]:
    """The dry-run jobs with these config edits; the config is restored afterwards."""
    original = (workdir / "config.yaml").read_text()
    edit_config(workdir, **sections)
    try:
        return planned_jobs(workdir)
    finally:
        (workdir / "config.yaml").write_text(original)


def sample_count(workdir) -> int:
    return len((workdir / "results/synthetic/samples.tsv").read_text().splitlines()) - 1


def subject_count(workdir) -> int:
    return len(read_samples(workdir / "results/synthetic/samples.tsv")["subject"].unique())


def planned_wildcards(workdir, rule) -> list[dict]:
    """The wildcards of each job of `rule` in a dry run of rule all."""
    result = run_snakemake(workdir, "-n")
    jobs = re.findall(rf"rule {rule}:\n(?:.*\n)*?\s+wildcards: (.*)", result.stdout)
    return [dict(pair.split("=", 1) for pair in line.split(", ")) for line in jobs]


def test_job_stats_table_is_parsed_into_rule_counts():
    output = (
        "Job stats:\njob        count\n-------  -------\nevm          12\ntrain         4\n"
        "total        16\n"
    )
    assert parse_job_stats(output) == {"evm": 12, "train": 4}
    assert parse_job_stats("Nothing to be done (all requested files are present).") == {}
    with pytest.raises(AssertionError):
        parse_job_stats("Building DAG of jobs...")


def test_nothing_to_do_after_a_complete_run(completed_tiny_run):
    workdir, _ = completed_tiny_run
    assert planned_jobs(workdir) == {}


@pytest.mark.parametrize(
    "stage, pattern",
    [
        ("evm", "evm/*/subjects/*.tsv"),
        ("flow", "flow/*/subjects/*.tsv"),
        ("masks", "masks/*/subjects/*.tsv"),
        ("shards", "shards/*/*.h5"),
        ("lbptop_features", "features/*/subjects/*.tsv"),
        ("train", "train/*/seed0/*/predictions.csv"),
    ],
)
def test_one_subjects_artifact_can_be_named_and_rebuilt_alone(completed_tiny_run, stage, pattern):
    # What a user types to redo one subject's stage: its output as the target, forced. Those
    # jobs' params read the samples table (a checkpoint), which only works once an input
    # function has read it: otherwise Snakemake refuses the whole command.
    workdir, _ = completed_tiny_run
    target = str(sorted((workdir / "results/synthetic").glob(pattern))[-1].relative_to(workdir))
    assert planned_jobs(workdir, target, "--forcerun", target) == {stage: 1}


def test_alpha_change_reruns_evm_and_downstream_only(completed_tiny_run):
    workdir, config = completed_tiny_run
    n = subject_count(workdir)
    jobs = planned_with(workdir, evm=dict(alpha=4))
    # Both network experiments (mscnn, evm_flow) share the changed chain; lbptop reads raw clips.
    assert jobs == {
        "evm": n,
        "flow": n,
        "masks": n,
        "contact_sheet": 1,
        "motion_card": 1,  # the card reads the default chain's masks
        "shards": 2,
        "train": 4,
        "evaluate": 2,
        "training_curves": 2,
        **REPORT_TAIL,
    }
    assert_reruns(jobs, {}, not_rerun=("synth", "samples", "lbptop_features", "lbptop_loso"))
    assert planned_jobs(workdir) == {}  # alpha set back: the earlier artifacts are found


def test_threshold_change_reruns_masks_and_downstream_only(completed_tiny_run):
    workdir, _ = completed_tiny_run
    n = subject_count(workdir)
    jobs = planned_with(workdir, masks=dict(threshold=60))
    assert jobs == {
        "masks": n,
        "contact_sheet": 1,
        "motion_card": 1,  # the card reads the default chain's masks
        "shards": 2,
        "train": 4,
        "evaluate": 2,
        "training_curves": 2,
        **REPORT_TAIL,
    }
    assert_reruns(jobs, {}, not_rerun=("evm", "flow", "lbptop_features"))


def test_flow_method_change_reruns_flow_and_downstream(completed_tiny_run):
    workdir, _ = completed_tiny_run
    n = subject_count(workdir)
    jobs = planned_with(workdir, flow=dict(method="dis"))
    assert_reruns(jobs, {"flow": n, "masks": n, "shards": 2, "train": 4}, not_rerun=("evm",))


def test_shard_size_change_reruns_only_the_shards_and_downstream(completed_tiny_run):
    workdir, _ = completed_tiny_run
    jobs = planned_with(workdir, shards=dict(input_size=40))
    assert_reruns(jobs, {"shards": 2, "train": 4}, not_rerun=("masks", "flow", "evm"))


def test_learning_rate_change_reruns_training_and_downstream_only(completed_tiny_run):
    workdir, _ = completed_tiny_run
    jobs = planned_with(workdir, train=dict(learning_rate=0.005))
    assert jobs == {"train": 4, "evaluate": 2, "training_curves": 2, **REPORT_TAIL}
    assert_reruns(jobs, {}, not_rerun=(*PREPROCESSING, "shards", "lbptop_loso"))


def test_an_edited_onset_recomputes_that_clips_subject_only(completed_tiny_run, tmp_path):
    """Fixing one clip's annotation recomputes its subject's EVM, flow, masks, shard and LBP-TOP
    features (one job per subject each): the jobs' params record the onset (as plain ints:
    numpy ints are not recorded by Snakemake, and the EVM of an edited clip then silently
    stayed stale). No other subject's preprocessing, features or shard is planned."""
    source, _ = completed_tiny_run
    workdir = tmp_path / "copy"
    shutil.copytree(source, workdir, symlinks=True)  # keeps mtimes: the copy is up to date
    annotations = next((workdir / "results/synthetic/dataset").glob("*/annotations.csv"))
    header, first, *rest = annotations.read_text().splitlines()
    fields = first.split(",")
    onset = header.split(",").index("onset")
    fields[onset] = str(int(fields[onset]) + 1)  # still before the apex (checked by samples)
    annotations.write_text("\n".join([header, ",".join(fields), *rest]) + "\n")
    run_snakemake(workdir, "results/synthetic/samples.tsv", "--cores", "1")
    jobs = planned_jobs(workdir)
    assert_reruns(jobs, {"evm": 1, "flow": 1, "masks": 1, "shards": 1, "lbptop_features": 1})
    before = read_samples(source / "results/synthetic/samples.tsv").set_index("sample")
    after = read_samples(workdir / "results/synthetic/samples.tsv").set_index("sample")
    [edited] = after.index[after["onset"] != before["onset"]]
    subject = after.loc[edited, "subject"]
    for rule in ("evm", "flow", "masks", "lbptop_features"):
        assert [job["subject"] for job in planned_wildcards(workdir, rule)] == [subject]


def test_filter_only_control_gets_its_own_artifacts(completed_tiny_run):
    workdir, _ = completed_tiny_run
    jobs = planned_with(workdir, evm=dict(mode="filter_only"))
    assert jobs.get("evm", 0) > 0 and "samples" not in jobs


def test_a_new_experiment_adds_only_its_own_jobs(completed_tiny_run):
    workdir, _ = completed_tiny_run
    jobs = planned_with(workdir, experiments=dict(slow_lr={"train": {"learning_rate": 0.001}}))
    # Two folds (one per subject) of the new experiment; the summary gains its row.
    assert jobs == {"train": 2, "evaluate": 1, "training_curves": 1, **REPORT_TAIL}


def test_a_new_experiment_with_its_own_alpha_preprocesses_only_its_chain(completed_tiny_run):
    workdir, _ = completed_tiny_run
    n = subject_count(workdir)
    jobs = planned_with(workdir, experiments=dict(alpha_4={"evm": {"alpha": 4}}))
    assert jobs == {
        "evm": n,
        "flow": n,
        "masks": n,
        "shards": 2,
        "train": 2,
        "evaluate": 1,
        "training_curves": 1,
        **REPORT_TAIL,
    }


def test_an_experiment_identical_to_mscnn_under_a_new_name_trains_nothing(completed_tiny_run):
    workdir, _ = completed_tiny_run
    jobs = planned_with(workdir, experiments=dict(mscnn_again={}))
    # Same parameters -> the shared mscnn artifacts; only the summary (a new row) is redone.
    assert jobs == REPORT_TAIL


# ---- a run killed mid-training --------------------------------------------------------


def fingerprint(path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def fold_dirs_with(workdir, name) -> set:
    return {p.parent for p in workdir.glob(f"results/synthetic/train/*/seed0/*/{name}")}


def started_folds(workdir) -> set:
    """Fold folders whose training has logged an epoch (logs/train/<key>/seed0/<subject>.log)."""
    train = workdir / "results/synthetic/train"
    return {
        train / log.parent.parent.name / "seed0" / log.stem
        for log in workdir.glob("results/synthetic/logs/train/*/seed0/*.log")
        if "epoch" in log.read_text()
    }


def wait_for_a_finished_and_a_running_fold(workdir, process, timeout_s=600) -> set:
    """Poll until one fold has its predictions.csv and another fold is training."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "training ended before it could be interrupted"
        finished = fold_dirs_with(workdir, "predictions.csv")
        if finished and started_folds(workdir) - finished:
            return finished
        time.sleep(0.2)
    raise AssertionError("no fold finished while another one trained, within the timeout")


def trained_folds(output: str) -> set:
    """(train key, subject) of each train job a Snakemake run printed."""
    return set(re.findall(r"wildcards: train_key=([^,\s]+), seed=\d+, subject=(\S+)", output))


def test_a_run_killed_mid_training_resumes_without_redoing_finished_folds(tmp_path):
    workdir = tmp_path
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()))
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(workdir, "all_shards", "--cores", "2")
    process = subprocess.Popen(
        snakemake_command(workdir, "train_all", "--cores", "1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill reaches the jobs too
    )
    try:
        finished = wait_for_a_finished_and_a_running_fold(workdir, process)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    before = {p: fingerprint(p) for fold in finished for p in sorted(fold.iterdir())}
    # What a user types after a kill -9 (docs/experiments.md, "Incremental reruns and scale"):
    # the lock of the killed run stays, so first `snakemake --unlock`; then the same command, with
    # --rerun-incomplete in case the kill hit a fold between two of its output files.
    locked = run_snakemake(workdir, "train_all", "--cores", "2", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    run_snakemake(workdir, "--unlock")
    rerun = run_snakemake(workdir, "train_all", "--cores", "2", "--rerun-incomplete")
    output = rerun.stdout + rerun.stderr
    jobs = parse_job_stats(output)
    assert jobs.get("train") == 4 - len(finished), output
    finished_folds = {(fold.parent.parent.name, fold.name) for fold in finished}
    assert trained_folds(output) and not trained_folds(output) & finished_folds, output
    assert {p: fingerprint(p) for p in before} == before
    assert len(list(workdir.glob("results/synthetic/train/*/seed0/*/predictions.csv"))) == 4
    # The summary of every experiment (rule all adds only the HTML report on top).
    final = run_snakemake(workdir, "paper", "--cores", "2")
    assert (workdir / "results/synthetic/summary.md").exists(), final.stdout
    assert planned_jobs(workdir, "paper") == {}


# ---- scale: a CASME II-sized DAG (255 samples, 26 subjects); timed in bench_scale.py ---------


def test_a_casme2_sized_dry_run_plans_26_folds_per_experiment(tmp_path):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    # Small frames: the dry run reads only samples.tsv, never the frames.
    config["synthetic"].update(
        subjects=26, clips_per_subject=10, frame_size=32, frames_min=16, frames_max=20
    )
    config["experiments"].update(
        alpha_4={"evm": {"alpha": 4}},
        dis_flow={"flow": {"method": "dis"}},
        slow_lr={"train": {"learning_rate": 0.001}},
    )
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run_snakemake(tmp_path, "results/synthetic/samples.tsv", "--cores", "2")
    n = sample_count(tmp_path)
    assert 150 < n < 400 and subject_count(tmp_path) == 26
    jobs = planned_jobs(tmp_path)
    networks = ["mscnn", "evm_flow", "alpha_4", "dis_flow", "slow_lr"]
    assert jobs == {
        "evm": 2 * 26,  # per subject: alpha 8 (mscnn, evm_flow, dis_flow, slow_lr) and alpha 4
        "flow": 3 * 26,  # deepflow on both, dis on alpha 8
        "masks": 3 * 26,
        "contact_sheet": 1,
        "motion_card": 1,  # the default chain's card
        "preview_synth": 1,
        "shards": 3 * 26,
        "train": 26 * len(networks),
        "evaluate": len(networks) + 1,
        "training_curves": len(networks),
        "lbptop_features": 26,  # per subject
        "lbptop_loso": 1,
        **REPORT_TAIL,
    }

"""Disk: the clean_cache targets list / remove artifact folders whose key the config no
longer produces, and keep the current ones (keys as the workflow itself computes them)."""

import json
import re

import pytest
import yaml

from conftest import REPO, make_tiny, run_snakemake
from mer.store import cache


def current_keys(workdir) -> dict:
    """The keys the workflow passes to `mer clean-cache`, read from its dry-run command."""
    result = run_snakemake(workdir, "clean_cache", "-n", "-p")
    return json.loads(re.search(r"--current-json '(\{.*?\})'", result.stdout).group(1))


def make_artifacts(data_dir, keys: dict) -> None:
    for stage, stage_keys in keys.items():
        for key in stage_keys:
            (data_dir / stage / key).mkdir(parents=True, exist_ok=True)
            (data_dir / stage / key / "artifact.bin").write_bytes(b"x" * 1000)
            (data_dir / "logs" / stage).mkdir(parents=True, exist_ok=True)
            (data_dir / "logs" / stage / f"{key}.log").write_text("log")


@pytest.mark.slow
def test_an_old_alpha_is_removed_and_current_keys_kept(tmp_path):
    config = make_tiny(yaml.safe_load((REPO / "config.yaml").read_text()))
    config["sweeps"]["alpha"] = [4, 8]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    data_dir = tmp_path / "results" / "synthetic"
    old = current_keys(tmp_path)
    make_artifacts(data_dir, old)
    (data_dir / "samples.tsv").write_text("kept: not a key folder")

    config["sweeps"]["alpha"] = [8]  # alpha 4 dropped from the sweep
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    new = current_keys(tmp_path)
    old_evm = set(old["evm"]) - set(new["evm"])
    assert len(old_evm) == 1 and "-a4-" in old_evm.pop()

    listed = run_snakemake(tmp_path, "--cores", "1", "clean_cache")
    stale = {(stage, key) for stage, keys in old.items() for key in keys if key not in new[stage]}
    assert {stage for stage, _ in stale} >= {"evm", "flow", "masks", "shards", "train"}
    assert all((data_dir / stage / key).is_dir() for stage, key in stale), "dry run removes none"
    assert "would remove" in listed.stdout + listed.stderr

    run_snakemake(tmp_path, "--cores", "1", "clean_cache_delete")
    for stage, keys in old.items():
        for key in keys:
            assert (data_dir / stage / key).exists() == ((stage, key) not in stale), (stage, key)
            assert (data_dir / "logs" / stage / f"{key}.log").exists() == (
                key in {k for ks in new.values() for k in ks}
            )
    assert (data_dir / "samples.tsv").exists()


def test_stale_entries_leave_unkeyed_names_and_unlisted_stages_alone(tmp_path):
    (tmp_path / "evm" / "magnify-a4-0123abcd").mkdir(parents=True)
    (tmp_path / "evm" / "magnify-a8-89abcdef").mkdir(parents=True)
    (tmp_path / "evm" / "notes").mkdir(parents=True)
    (tmp_path / "dataset" / "seed0-00000000").mkdir(parents=True)
    (tmp_path / "logs" / "evm").mkdir(parents=True)
    (tmp_path / "logs" / "evm" / "magnify-a4-0123abcd.log").write_text("x")
    (tmp_path / "logs" / "samples.log").write_text("x")
    stale = cache.stale_entries(tmp_path, {"evm": ["magnify-a8-89abcdef"]})
    assert stale == [
        tmp_path / "evm" / "magnify-a4-0123abcd",
        tmp_path / "logs" / "evm" / "magnify-a4-0123abcd.log",
    ]
    with pytest.raises(ValueError, match="unknown stage"):
        cache.stale_entries(tmp_path, {"../elsewhere": []})

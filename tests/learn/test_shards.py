import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mer.learn import augment, shards
from mer.learn.reader import ShardDataset

CLASSES = ["a", "b", "c"]


def fake_variants(rng, size=16):
    field = rng.normal(0, 0.3, (24, 24, 2)).astype(np.float32)
    apex = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    return augment.variants(field, apex, size)


def write_subject(path, subject, n_samples, seed=0):
    rng = np.random.default_rng(seed)
    samples = [f"{subject}_clip{i}" for i in range(n_samples)]
    labels = [int(rng.integers(len(CLASSES))) for _ in samples]
    variants = [fake_variants(rng) for _ in samples]
    shards.write_shard(
        path,
        subject,
        samples,
        labels,
        variants,
        CLASSES,
        {"evm": {"alpha": 8}},
        {"in.npz": "0" * 64},
    )
    return samples, labels, variants


def test_round_trip_keeps_every_array_and_ten_rows_per_sample(tmp_path):
    path = tmp_path / "s1.h5"
    samples, labels, variants = write_subject(path, "s1", 3)
    data = shards.read_shard(path)
    assert len(data["label"]) == 10 * len(samples)
    for row in range(len(data["label"])):
        aug, i = data["augmentation"][row], samples.index(data["sample"][row])
        assert data["label"][row] == labels[i]
        for name in shards.IMAGE_ARRAYS:
            assert np.array_equal(data[name][row], variants[i][aug][name])
    assert data["attrs"]["subject"] == "s1" and '"alpha": 8' in data["attrs"]["params"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_augmentation_zero_rows_are_the_originals_in_one_block(tmp_path):
    path = tmp_path / "s1.h5"
    samples, _, variants = write_subject(path, "s1", 4)
    data = shards.read_shard(path, augmentations={0})
    assert list(data["sample"]) == samples
    assert all(
        np.array_equal(data["flow_image"][i], variants[i][0]["flow_image"]) for i in range(4)
    )
    with h5py.File(path) as shard:
        assert (shard["augmentation"][:4] == 0).all()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "missing array"])
def test_a_damaged_shard_is_a_clear_error_naming_the_file(tmp_path, damage):
    path = tmp_path / "s1.h5"
    write_subject(path, "s1", 2)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not an hdf5 file")
    else:
        with h5py.File(path, "a") as shard:
            del shard["mask"]
    with pytest.raises(shards.ShardError, match="s1.h5"):
        shards.read_shard(path)


@pytest.fixture(scope="module")
def five_subject_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    paths = []
    for k in range(5):
        path = folder / f"s{k}.h5"
        write_subject(path, f"s{k}", n_samples=k + 1, seed=k)
        paths.append(path)
    return paths


@settings(max_examples=30, deadline=None)
@given(chosen=st.sets(st.sampled_from([f"s{k}" for k in range(5)]), min_size=1))
def test_reader_serves_exactly_the_chosen_subjects(five_subject_shards, chosen):
    dataset = ShardDataset(five_subject_shards, chosen)
    assert set(dataset.subject) == chosen
    assert len(dataset) == 10 * sum(int(s[1:]) + 1 for s in chosen)
    originals = ShardDataset(five_subject_shards, chosen, augmentations={0})
    assert len(originals) == len(dataset) // 10 and set(originals.augmentation) == {0}


def test_reader_refuses_a_shard_whose_rows_belong_to_another_subject(tmp_path):
    path = tmp_path / "s1.h5"
    write_subject(path, "s1", 2)
    with h5py.File(path, "a") as shard:
        subjects = shard["subject"].asstr()[:]
        subjects[0] = "s9"
        del shard["subject"]
        shard["subject"] = subjects.astype(object).astype(h5py.string_dtype())
    with pytest.raises(shards.ShardError, match="s9"):
        ShardDataset([path], {"s1"})


def test_reader_items_are_scaled_by_a_fixed_factor(five_subject_shards):
    item = ShardDataset(five_subject_shards, {"s0"})[0]
    assert item["flow_image"].shape == (3, 16, 16) and item["apex_gray"].shape == (1, 16, 16)
    assert 0.0 <= float(item["apex_gray"].min()) and float(item["apex_gray"].max()) <= 1.0

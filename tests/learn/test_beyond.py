"""Beyond the method (`snakemake beyond`): each variant trains on the tiny setting, late
fusion's weights see the validation subjects only, stream dropout and label smoothing do what
they say and nothing at their defaults, flow_strain is optical strain, init-from-file loads a
torchvision ResNet-18 file and refuses any other clearly."""

import numpy as np
import pytest
import torch
import torchvision
import yaml
from test_train import CLASSES, QUICK, make_shards

from conftest import REPO
from mer.learn import fusion, inference, pretrained, train
from mer.learn.model import MSCNN
from mer.learn.reader import ShardDataset, flow_strain
from mer.methods.elrcn_inputs import optical_strain

CONFIG = yaml.safe_load((REPO / "config.yaml").read_text())
BEYOND = CONFIG["sweeps"]["beyond"]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def quiet(_):
    pass


@pytest.fixture(scope="module")
def shard_paths(tmp_path_factory):
    """Four subjects of test_train's easy clips."""
    labels = {f"s{i}": [0, 1, 2, 0, 1, 2] for i in range(1, 5)}
    return make_shards(tmp_path_factory.mktemp("beyond"), labels)


@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    """A torchvision resnet18 state_dict written here (nothing is downloaded)."""
    path = tmp_path_factory.mktemp("weights") / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    return path


def quick_settings(variant_train: dict) -> dict:
    """QUICK with the variant's train overrides; the method's three streams where it names none."""
    return {**QUICK, "streams": CONFIG["train"]["streams"], **variant_train}


@pytest.mark.parametrize("name", [*BEYOND, "init_weights"])
def test_each_beyond_variant_trains_a_quick_fold(
    shard_paths,
    resnet18_file,
    tmp_path,
    name,
):
    variant = BEYOND.get(name, {"train": {"init_weights": str(resnet18_file)}})
    config = train.TrainConfig.from_dict(quick_settings(variant.get("train", {})))
    result = train.train_fold(
        shard_paths,
        "s2",
        config,
        seed=0,
        log=quiet,
    )
    probabilities = result.predictions[[f"p_{c}" for c in CLASSES]].to_numpy()
    assert set(result.predictions.subject) == {"s2"} and len(probabilities) == 6
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    if config.fusion == "late":
        weights = result.fold["fusion_weights"]
        assert list(weights) == list(config.streams) == list(result.checkpoint["fusion_weights"])
        assert min(weights.values()) >= 0 and abs(sum(weights.values()) - 1) < 1e-9
    else:
        assert "fusion_weights" not in result.fold
    if config.init_weights:
        assert len(result.fold["init_weights"]["sha256"]) == 64
    # The checkpoint alone (fusion weights included) reproduces the predictions.
    torch.save(result.checkpoint, tmp_path / "checkpoint.pt")
    model = train.load_model(torch.load(tmp_path / "checkpoint.pt", weights_only=True))
    test_set = ShardDataset(
        shard_paths,
        {"s2"},
        augmentations={0},
    )
    _, reloaded = inference.predict(model, test_set, torch.device("cpu"))
    assert np.allclose(reloaded, probabilities, atol=1e-6)


@pytest.mark.parametrize("held_out", ["s1", "s3"])
def test_fusion_weights_are_fitted_on_validation_subjects_only(shard_paths, monkeypatch, held_out):
    seen = []
    original = fusion.stream_probabilities

    def spy(model, dataset, device):
        seen.append(set(dataset.subject))
        return original(model, dataset, device)

    monkeypatch.setattr(fusion, "stream_probabilities", spy)
    config = train.TrainConfig.from_dict(
        {**QUICK, "streams": ["flow_image", "flow_strain"], "fusion": "late"}
    )
    result = train.train_fold(
        shard_paths,
        held_out,
        config,
        0,
        log=quiet,
    )
    assert seen == [set(result.fold["validation_subjects"])]
    assert held_out not in seen[0] and not seen[0] & set(result.fold["train_subjects"])


def test_the_weight_fit_prefers_the_informative_stream():
    labels = np.array([0, 1, 2, 0, 1, 2])
    perfect = np.eye(3)[labels] * 0.9 + 0.1 / 3
    uninformative = np.full((6, 3), 1 / 3)
    weights = fusion.best_weights(np.stack([uninformative, perfect], axis=1), labels)
    assert weights.tolist() == [0.0, 1.0]
    grid = fusion.simplex_grid(3)
    assert len(grid) == 231 and np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()


def test_stream_dropout_never_drops_every_stream_of_a_sample():
    model = MSCNN(("flow_image", "apex_gray", "masked_apex"), 3, 8, stream_dropout=0.9)
    outputs = model._drop_streams([torch.ones(500, 4) for _ in range(3)])
    kept = torch.stack([o[:, 0] for o in outputs], dim=1)
    assert (kept.sum(dim=1) >= 1).all() and (kept == 0).any()


@pytest.mark.parametrize("stream_dropout", [0.0, 0.5])
def test_stream_dropout_is_off_outside_training_steps(stream_dropout):
    """At evaluation and in the BatchNorm re-estimation (no grad) nothing is dropped and no
    random number is drawn; at its default 0 not even in training steps (the same bits)."""
    model = MSCNN(("flow_image", "apex_gray"), 3, 8, stream_dropout=stream_dropout)
    batch = {"flow_image": torch.rand(4, 3, 32, 32), "apex_gray": torch.rand(4, 1, 32, 32)}
    state = torch.get_rng_state()
    model.eval()
    first, again = model.features(batch), model.features(batch)
    model.train()
    with torch.no_grad():
        model.features(batch)
    assert torch.equal(first, again) and torch.equal(torch.get_rng_state(), state)
    model.features(batch)
    assert torch.equal(torch.get_rng_state(), state) == (stream_dropout == 0)


def test_label_smoothing_changes_the_loss_and_zero_is_plain_cross_entropy():
    model = MSCNN(("flow_image",), 3, 8)
    inputs = {"flow_image": torch.rand(4, 3, 32, 32)}
    labels = torch.tensor([0, 1, 2, 0])
    logits, plain = train._logits_and_loss(model, inputs, labels, 0.0)
    _, smoothed = train._logits_and_loss(model, inputs, labels, 0.1)
    assert torch.equal(plain, torch.nn.functional.cross_entropy(logits, labels))
    assert not torch.equal(plain, smoothed)


def test_flow_strain_is_u_v_and_the_optical_strain_of_the_flow():
    rng = np.random.default_rng(0)
    flow_uv = rng.normal(size=(12, 10, 2)).astype(np.float32)
    channels = flow_strain(torch.from_numpy(flow_uv).permute(2, 0, 1))
    assert channels.shape == (3, 12, 10)
    assert torch.equal(channels[:2], torch.from_numpy(flow_uv).permute(2, 0, 1))
    assert np.allclose(channels[2].numpy(), optical_strain(flow_uv), atol=1e-5)
    translation = torch.ones(2, 2, 8, 8)  # a uniform translation strains nothing
    assert torch.equal(flow_strain(translation)[:, 2], torch.zeros(2, 8, 8))


def test_shard_rows_carry_the_flow_strain_stream(shard_paths):
    dataset = ShardDataset(
        shard_paths,
        {"s1"},
    )
    row = dataset[3]
    assert row["flow_strain"].shape == (3, *row["flow_uv"].shape[1:])
    assert torch.equal(row["flow_strain"][:2], row["flow_uv"])


def test_init_weights_load_into_every_trunk_with_the_first_conv_adapted(resnet18_file):
    weights = torch.load(resnet18_file, weights_only=True)
    model = MSCNN(("flow_image", "flow_uv", "apex_gray"), 3, 8)
    pretrained.initialise_trunks(model, resnet18_file)
    rgb = weights["conv1.weight"]
    assert torch.equal(model.trunks["flow_image"].conv1.weight, rgb)
    assert torch.equal(model.trunks["apex_gray"].conv1.weight, rgb.mean(1, keepdim=True))
    assert torch.equal(
        model.trunks["flow_uv"].conv1.weight, rgb.mean(1, keepdim=True).repeat(1, 2, 1, 1)
    )
    for trunk in model.trunks.values():
        assert torch.equal(trunk.layer4[1].conv2.weight, weights["layer4.1.conv2.weight"])
        assert torch.equal(trunk.bn1.running_var, weights["bn1.running_var"])


def _other_shape(path, state):
    torch.save({**state, "layer1.0.conv1.weight": torch.zeros(64, 64, 5, 5)}, path)


def _without_layer4(path, state):
    torch.save({k: v for k, v in state.items() if "layer4" not in k}, path)


def _with_extra_key(path, state):
    torch.save({**state, "extra.weight": torch.zeros(1)}, path)


MISMATCHED = {
    "other shape": (_other_shape, "layer1.0.conv1.weight has shape"),
    "missing keys": (_without_layer4, "missing layer4"),
    "extra keys": (_with_extra_key, "unexpected extra.weight"),
    "a list": (lambda path, state: torch.save([1, 2, 3], path), "not a mapping"),
    "nested": (lambda path, state: torch.save({"model": state}, path), "not a mapping"),
    "not torch": (lambda path, state: path.write_bytes(b"not a torch file"), "cannot be read"),
    "an object": (lambda path, state: torch.save(np.zeros(3), path), "cannot be read"),
    "no file": (lambda path, state: None, "cannot be read"),
}


@pytest.mark.parametrize("case", MISMATCHED)
def test_a_mismatched_init_weights_file_is_refused_naming_it(tmp_path, case):
    write, named = MISMATCHED[case]
    path = tmp_path / "weights.pth"
    write(path, torchvision.models.resnet18(weights=None).state_dict())
    with pytest.raises(pretrained.InitWeightsError) as error:
        pretrained.initialise_trunks(MSCNN(("apex_gray",), 3, 8), path)
    message = str(error.value)
    assert str(path) in message and named in message and "torchvision resnet18" in message


def test_the_new_settings_default_to_the_method_in_schema_and_training():
    properties = SCHEMA["properties"]["train"]["properties"]
    defaults = train.TrainConfig()
    for name in ("label_smoothing", "stream_dropout", "fusion", "init_weights"):
        assert properties[name]["default"] == getattr(defaults, name) == CONFIG["train"][name]

"""Safety of training files: checkpoints and resume files load weights only (a file carrying
pickled code is refused, not run)."""

from pathlib import Path

import numpy as np
import torch
from test_interrupt import ONE_EPOCH, three_subjects  # noqa: F401 (fixture)

from mer.learn import inference, train
from mer.learn.reader import ShardDataset


def test_a_checkpoint_loads_weights_only_and_predicts_the_same(three_subjects, tmp_path):  # noqa: F811
    config = train.TrainConfig.from_dict({**ONE_EPOCH, "head_epochs": 1})
    result = train.train_fold(three_subjects, "s1", config, 0, log=lambda _: None)
    torch.save(result.checkpoint, tmp_path / "checkpoint.pt")
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    model = train.load_model(checkpoint)
    test_set = ShardDataset(three_subjects, {"s1"}, augmentations={0})
    _, probabilities = inference.predict(model, test_set, torch.device("cpu"))
    expected = result.predictions[[f"p_{c}" for c in checkpoint["classes"]]].to_numpy()
    np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-6)


class Payload:
    """Unpickling this would run code: weights-only loading must refuse it."""

    def __reduce__(self):
        return (Path.touch, (Path(__file__).parent / "never_created",))


def test_a_resume_file_carrying_code_is_refused_not_run(three_subjects, tmp_path):  # noqa: F811
    marker = Path(__file__).parent / "never_created"
    resume = tmp_path / "resume.pt"
    torch.save({"fingerprint": Payload()}, resume)
    lines = []
    config = train.TrainConfig.from_dict({**ONE_EPOCH, "head_epochs": 1})
    result = train.train_fold(three_subjects, "s1", config, 0, log=lines.append, resume_path=resume)
    assert not marker.exists()
    assert any("ignoring unreadable epoch checkpoint" in line for line in lines)
    assert list(result.history.epoch) == [1]

"""ELRCN-TE: a per-frame CNN, its features through an LSTM, the last hidden state classified;
trained and tested in one leak-free LOSO fold.

After Khor, See, Phan & Lin, "Enriched long-term recurrent convolutional network for facial
micro-expression recognition" (FG 2018). Their two variants enrich the LSTM's input:
- spatial enrichment (SE): flow, strain and gray stacked as the channels of one CNN's input;
- temporal enrichment (TE): one CNN per input type, the per-frame features concatenated
  ("feature-wise stacking") before the LSTM. ELRCN-TE is the row of the MSCNN paper's
  Table II; `enrichment="temporal"` (default) builds it, "spatial" builds SE.
Both read the same per-sample inputs (mer.methods.elrcn_inputs: channels u, v, strain, gray);
TE gives flow (u, v), strain and gray each their own CNN.

Departures from the original, and why:
- the CNNs are trained from scratch (nothing can be downloaded here; the original fine-tuned
  VGG-Face): a small 4-block CNN at 64x64 by default, since ~200 clips cannot train millions
  of weights from random, ResNet-18 (torchvision, weights=None) as an option;
- GroupNorm in the small CNN: no running statistics, so training and evaluation mode agree
  however few batches an epoch has (mer.learn.inference explains the BatchNorm trouble);
- early stopping on whole validation subjects and class-balanced cross-entropy (weights from
  the training subjects' counts), as the other methods in mer are evaluated.

Who sees what in a fold: the held-out subject's samples are only predicted; validation
(early stopping, best epoch) uses whole training subjects (mer.learn.split.split_validation);
normalisation constants and class weights come from the remaining training (fit) subjects.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from mer import compute
from mer.learn import split
from mer.learn.model import resnet18_trunk
from mer.learn.predictions import predictions_table
from mer.methods.elrcn_inputs import CHANNELS
from mer.settings import defaults

ENRICHMENTS = ("temporal", "spatial")
CNNS = ("small", "resnet18")
# TE: one CNN per input type, by channel index of CHANNELS.
INPUT_GROUPS = {"flow": (0, 1), "strain": (2,), "gray": (3,)}
STACKED_GROUPS = {"stacked": tuple(range(len(CHANNELS)))}
SCHEMA = defaults("elrcn")


@dataclass
class ElrcnSettings:
    """The training keys of the `elrcn` section; defaults and meanings in the config schema."""

    enrichment: str = SCHEMA["enrichment"]
    cnn: str = SCHEMA["cnn"]
    cnn_features: int = SCHEMA["cnn_features"]
    lstm_hidden: int = SCHEMA["lstm_hidden"]
    dropout: float = SCHEMA["dropout"]
    learning_rate: float = SCHEMA["learning_rate"]
    weight_decay: float = SCHEMA["weight_decay"]
    batch_size: int = SCHEMA["batch_size"]
    max_epochs: int = SCHEMA["max_epochs"]
    patience: int = SCHEMA["patience"]
    validation_fraction: float = SCHEMA["validation_fraction"]
    flip: bool = SCHEMA["flip"]
    class_weights: bool = SCHEMA["class_weights"]

    @classmethod
    def from_dict(cls, values: dict | None) -> ElrcnSettings:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values or {}) - known)
        if unknown:
            raise ValueError(f"unknown ELRCN settings {unknown}; allowed: {sorted(known)}")
        settings = cls(**(values or {}))
        if settings.enrichment not in ENRICHMENTS or settings.cnn not in CNNS:
            raise ValueError(f"enrichment must be one of {ENRICHMENTS}, cnn one of {CNNS}")
        return settings


def small_cnn(in_channels: int, features: int) -> nn.Sequential:
    """Four 3x3 conv blocks (GroupNorm, ReLU; the first three halve the size), global average
    pooling: (N, in_channels, H, W) -> (N, features). About 60 k weights at features=64
    (ELRCN-TE in all, three of them plus the LSTM and head: about 350 k)."""
    widths = [in_channels, 16, 32, 64]
    layers = []
    for width_in, width_out in zip(widths[:-1], widths[1:], strict=True):
        layers += [
            nn.Conv2d(width_in, width_out, 3, padding=1, bias=False),
            nn.GroupNorm(4, width_out),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        ]
    layers += [
        nn.Conv2d(widths[-1], features, 3, padding=1, bias=False),
        nn.GroupNorm(4, features),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    ]
    return nn.Sequential(*layers)


def frame_encoder(in_channels: int, cnn: str, features: int) -> nn.Module:
    if cnn == "small":
        return small_cnn(in_channels, features)
    return nn.Sequential(resnet18_trunk(in_channels), nn.Linear(512, features), nn.ReLU())


class ELRCN(nn.Module):
    """(N, steps, C, H, W) -> class logits (N, n_classes)."""

    def __init__(self, n_classes: int, settings: ElrcnSettings):
        super().__init__()
        groups = INPUT_GROUPS if settings.enrichment == "temporal" else STACKED_GROUPS
        self.groups = {name: list(channels) for name, channels in groups.items()}
        self.encoders = nn.ModuleDict(
            {
                name: frame_encoder(len(channels), settings.cnn, settings.cnn_features)
                for name, channels in self.groups.items()
            }
        )
        self.lstm = nn.LSTM(
            settings.cnn_features * len(self.groups), settings.lstm_hidden, batch_first=True
        )
        self.head = nn.Sequential(
            nn.Dropout(settings.dropout), nn.Linear(settings.lstm_hidden, n_classes)
        )

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        n_sequences, n_steps = sequences.shape[:2]
        frames = sequences.flatten(0, 1)
        per_frame = torch.cat(
            [self.encoders[name](frames[:, channels]) for name, channels in self.groups.items()],
            dim=1,
        )
        _, (hidden, _) = self.lstm(per_frame.view(n_sequences, n_steps, -1))
        return self.head(hidden[-1])


def flip_horizontally(sequences: torch.Tensor) -> torch.Tensor:
    """Sequences (..., C, H, W) of the mirrored clips: every channel mirrored, u negated
    (rightward motion becomes leftward). Valid after normalisation too: u and v are only
    scaled, never shifted (see channel_normalisation)."""
    flipped = torch.flip(sequences, dims=[-1])
    flipped[..., CHANNELS.index("u"), :, :] *= -1
    return flipped


def channel_normalisation(inputs: torch.Tensor) -> dict[str, dict[str, float]]:
    """Channel -> {offset, scale} from (N, steps, C, H, W) training inputs: normalised =
    (x - offset) / scale. u and v share one scale (their root mean square) and no offset, so
    that zero motion stays zero and the direction keeps its sign; strain and gray are
    standardised."""
    data = inputs.transpose(0, 2).flatten(1).double()  # (C, everything else)
    flow_rms = float(data[[0, 1]].pow(2).mean().sqrt())
    constants = {name: {"offset": 0.0, "scale": flow_rms} for name in ("u", "v")}
    for name in ("strain", "gray"):
        values = data[CHANNELS.index(name)]
        constants[name] = {"offset": float(values.mean()), "scale": float(values.std())}
    for values in constants.values():
        values["scale"] = values["scale"] if values["scale"] > 1e-8 else 1.0
    return constants


def normalised(inputs: torch.Tensor, constants: dict) -> torch.Tensor:
    offsets = torch.tensor([constants[c]["offset"] for c in CHANNELS]).view(-1, 1, 1)
    scales = torch.tensor([constants[c]["scale"] for c in CHANNELS]).view(-1, 1, 1)
    return ((inputs - offsets) / scales).float()


@dataclass
class SequenceSet:
    """One role's samples in a fold (fit, validation or test), inputs as a tensor."""

    samples: list[str]
    subjects: list[str]
    labels: torch.Tensor  # class indices
    inputs: torch.Tensor  # (N, steps, C, H, W)

    def __len__(self) -> int:
        return len(self.samples)


def train_elrcn_fold(
    inputs_by_sample,
    labels,
    subjects,
    held_out: str,
    classes: list[str],
    seed: int,
    settings: ElrcnSettings | dict | None = None,
    log=print,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Train on every subject but `held_out` and predict its samples.

    inputs_by_sample: sample -> (steps, C, H, W) array (mer.methods.elrcn_inputs); labels:
    sample -> class name (or index into classes); subjects: sample -> subject.
    Returns (predictions in mer.learn.train's format: sample, subject, true_label,
    predicted_label, p_<class>...; the epoch history; the fold record of fold.json).
    Deterministic for a seed on CPU.
    """
    if not isinstance(settings, ElrcnSettings):
        settings = ElrcnSettings.from_dict(settings)
    table = _sample_table(inputs_by_sample, labels, subjects, classes)
    fit_subjects, val_subjects, notes = _split(table, held_out, classes, settings, seed)
    torch.manual_seed(seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    compute.configure(device, torch.get_num_threads())
    fit_set, val_set, test_set = (
        _sequence_set(table, inputs_by_sample, role_subjects)
        for role_subjects in (fit_subjects, val_subjects, [held_out])
    )
    constants = channel_normalisation(fit_set.inputs)
    for role in (fit_set, val_set, test_set):
        role.inputs = normalised(role.inputs, constants)
    weights = _class_weights(fit_set.labels, len(classes), settings.class_weights)
    model = ELRCN(len(classes), settings).to(device)
    history, best_epoch = _run_epochs(model, fit_set, val_set, weights, settings, seed, device, log)
    predictions = _predict_table(model, test_set, classes, device)
    fold = _fold_record(
        held_out, seed, device, settings, (fit_set, val_set, test_set), classes, constants
    )
    fold.update(
        {
            "epochs_run": len(history),
            "best_epoch": best_epoch,
            "class_weights": [float(w) for w in weights],
            "notes": notes,
            "compute": compute.fingerprint(device, "fp32"),
        }
    )
    return predictions, pd.DataFrame(history), fold


def _sample_table(inputs_by_sample, labels, subjects, classes) -> pd.DataFrame:
    """sample, subject, label (index) of every sample, sorted by sample: the fold's result
    does not depend on the order of the mappings."""
    rows = []
    for sample in sorted(inputs_by_sample):
        label = labels[sample]
        index = classes.index(label) if isinstance(label, str) else int(label)
        if not 0 <= index < len(classes):
            raise ValueError(f"sample {sample!r}: label {label!r} is not one of {classes}")
        rows.append({"sample": sample, "subject": str(subjects[sample]), "label": index})
    shapes = {np.shape(inputs_by_sample[s]) for s in inputs_by_sample}
    if len(shapes) != 1 or len(next(iter(shapes))) != 4:
        raise ValueError(f"every sample's inputs must be one (steps, C, H, W) shape; got {shapes}")
    return pd.DataFrame(rows, columns=["sample", "subject", "label"])


def _split(table: pd.DataFrame, held_out: str, classes, settings, seed) -> tuple:
    """(fit subjects, validation subjects, notes): whole training subjects, never held_out."""
    if held_out not in set(table["subject"]):
        raise ValueError(f"held-out subject {held_out!r} has no samples")
    training = table[table["subject"] != held_out]
    if training.empty:
        raise ValueError(f"holding out {held_out!r} leaves no training samples")
    subject_labels = {s: group["label"].to_numpy() for s, group in training.groupby("subject")}
    fit, val, note = split.split_validation(
        subject_labels, settings.validation_fraction, seed, len(classes)
    )
    assert held_out not in fit and held_out not in val
    notes = [note] if note else []
    absent = sorted(set(range(len(classes))) - set(training[training.subject.isin(fit)].label))
    if absent:
        notes.append(
            f"classes {[classes[c] for c in absent]} are absent from this fold's training "
            "set: the model cannot predict them"
        )
    return fit, val, notes


def _sequence_set(table: pd.DataFrame, inputs_by_sample, role_subjects) -> SequenceSet:
    rows = table[table["subject"].isin(role_subjects)]
    samples = rows["sample"].tolist()
    stacked = [np.asarray(inputs_by_sample[s], dtype=np.float32) for s in samples]
    shape = np.shape(inputs_by_sample[table["sample"].iloc[0]])
    inputs = torch.from_numpy(np.stack(stacked)) if stacked else torch.zeros((0, *shape))
    labels = torch.tensor(rows["label"].tolist(), dtype=torch.int64)
    return SequenceSet(samples, rows["subject"].tolist(), labels, inputs)


def _class_weights(labels: torch.Tensor, n_classes: int, balanced: bool) -> torch.Tensor:
    """n / (k * count) for the fit subjects' classes (absent classes: 0); ones if not balanced."""
    if not balanced:
        return torch.ones(n_classes)
    counts = torch.bincount(labels, minlength=n_classes).double()
    present = counts > 0
    weights = torch.zeros(n_classes, dtype=torch.float64)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.float()


def _run_epochs(model, fit_set, val_set, weights, settings, seed, device, log) -> tuple:
    """Epochs until early stopping on validation loss (or max_epochs without validation
    subjects); the best epoch's weights are restored. Returns (history rows, best epoch)."""
    optimiser = torch.optim.Adam(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    generator = torch.Generator().manual_seed(seed)
    history, best = [], {"loss": None, "epoch": 0, "state": None}
    for epoch in range(1, settings.max_epochs + 1):
        start = time.perf_counter()
        row = {"epoch": epoch}
        row.update(_train_epoch(model, optimiser, fit_set, weights, settings, generator, device))
        if len(val_set):
            row.update(_validate(model, val_set, weights, device))
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        log(
            " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        )
        if not len(val_set):
            continue
        if best["loss"] is None or row["val_loss"] < best["loss"]:
            best = {"loss": row["val_loss"], "epoch": epoch, "state": _state_copy(model)}
        elif epoch - best["epoch"] >= settings.patience:
            log(f"early stop at epoch {epoch}: best val_loss at epoch {best['epoch']}")
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])
        return history, best["epoch"]
    return history, len(history)


def _state_copy(model: nn.Module) -> dict:
    return copy.deepcopy(model.state_dict())


def _train_epoch(model, optimiser, fit_set, weights, settings, generator, device) -> dict:
    """One shuffled pass over the fit subjects' samples (random flips if settings.flip)."""
    model.train()
    order = torch.randperm(len(fit_set), generator=generator)
    total_loss, correct = 0.0, 0
    for first in range(0, len(order), settings.batch_size):
        rows = order[first : first + settings.batch_size]
        batch = fit_set.inputs[rows]
        if settings.flip:
            mirrored = torch.rand(len(rows), generator=generator) < 0.5
            batch[mirrored] = flip_horizontally(batch[mirrored])
        labels = fit_set.labels[rows].to(device)
        optimiser.zero_grad()
        logits = model(batch.to(device))
        loss = nn.functional.cross_entropy(logits, labels, weight=weights.to(device))
        loss.backward()
        optimiser.step()
        total_loss += loss.item() * len(rows)
        correct += int((logits.argmax(1) == labels).sum())
    return {"train_loss": total_loss / len(fit_set), "train_accuracy": correct / len(fit_set)}


def _validate(model, val_set, weights, device) -> dict:
    """Loss (class-weighted as in training), accuracy and macro-F1 on the validation subjects."""
    probabilities = _probabilities(model, val_set, device)
    log_p = torch.log(torch.as_tensor(probabilities) + 1e-12)
    loss = nn.functional.nll_loss(log_p, val_set.labels, weight=weights)
    predicted = probabilities.argmax(1)
    truth = val_set.labels.numpy()
    return {
        "val_loss": float(loss),
        "val_accuracy": float((predicted == truth).mean()),
        "val_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


@torch.no_grad()
def _probabilities(model, dataset: SequenceSet, device, batch_size: int = 64) -> np.ndarray:
    model.eval()
    chunks = [
        torch.softmax(model(dataset.inputs[i : i + batch_size].to(device)).float(), 1).cpu()
        for i in range(0, len(dataset), batch_size)
    ]
    return torch.cat(chunks).numpy()


def _predict_table(model, test_set: SequenceSet, classes, device) -> pd.DataFrame:
    """The held-out subject's rows in mer.learn.train's predictions format."""
    probabilities = _probabilities(model, test_set, device)
    return predictions_table(
        test_set.samples,
        test_set.subjects,
        test_set.labels.tolist(),
        probabilities.argmax(1),
        probabilities,
        classes,
    )


def _fold_record(held_out, seed, device, settings, sets, classes, constants) -> dict:
    """fold.json: who trained, validated and tested, with counts and the settings."""
    fit_set, val_set, test_set = sets
    return {
        "held_out": held_out,
        "seed": seed,
        "device": device.type,
        "method": f"elrcn-{'te' if settings.enrichment == 'temporal' else 'se'}",
        "train_subjects": sorted(set(fit_set.subjects)),
        "validation_subjects": sorted(set(val_set.subjects)),
        "test_subjects": [held_out],
        "counts": {
            "train_rows": len(fit_set),
            "train_clips": len(fit_set),
            "validation_clips": len(val_set),
            "test_clips": len(test_set),
            "train_per_class": {
                name: int((fit_set.labels == index).sum()) for index, name in enumerate(classes)
            },
        },
        "normalisation": {"subjects": "train_subjects", "channels": constants},
        "settings": asdict(settings),
    }

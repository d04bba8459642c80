"""Stage 7: train MSCNN for one LOSO fold, leak-free, then test on the held-out subject.

Who sees what:
- the held-out subject's shard is read once, for testing, and only its un-augmented rows;
- validation (early stopping, best-epoch choice) uses whole training subjects, chosen
  before training and stratified where the labels allow; all augmented copies of a clip stay
  with their subject;
- the over-sampler after the dense layer is fitted on the features of the training (fit)
  subjects only; inputs are scaled by a fixed 1/255, never by data statistics.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from mer import __version__
from mer.learn.model import MSCNN, MSCNN_STREAMS
from mer.learn.reader import ShardDataset
from mer.learn.shards import open_shard

OVERSAMPLERS = ("none", "random", "smote", "adasyn", "input")
MONITORS = ("val_loss", "val_f1")


@dataclass
class TrainConfig:
    streams: tuple = MSCNN_STREAMS
    dense_units: int = 256
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 64
    max_epochs: int = 200
    early_stopping: bool = True  # False: train max_epochs and keep the last weights
    patience: int = 10
    monitor: str = "val_loss"
    validation_fraction: float = 0.2  # of the training subjects, at least one subject
    oversampler: str = "random"  # after the dense layer; "input" balances the batches instead
    head_epochs: int = 100  # refit of the classifier head on balanced features
    batchnorm_rows: int = 512  # training rows that re-estimate BatchNorm statistics per epoch

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values["streams"] = tuple(values.get("streams", MSCNN_STREAMS))
        config = cls(**values)
        if config.oversampler not in OVERSAMPLERS or config.monitor not in MONITORS:
            raise ValueError(
                f"oversampler must be one of {OVERSAMPLERS}, monitor one of {MONITORS}"
            )
        return config


# Settings that only the head refit after the dense layer reads: variants that differ in
# nothing else train the same trunk, so they can take it from one another's checkpoint
# (workflow/rules/common.smk keeps its own copy of this tuple; a test checks they agree).
HEAD_SETTINGS = ("oversampler", "head_epochs")


def trunk_settings(config: TrainConfig) -> dict | None:
    """What the trained trunk depends on; None where it cannot be shared ("input" balances
    the training batches themselves)."""
    if config.oversampler == "input":
        return None
    values = {k: v for k, v in asdict(config).items() if k not in HEAD_SETTINGS}
    return dict(values, streams=list(values["streams"]))


def check_trunk(
    trunk: dict, held_out: str, seed: int, config: TrainConfig, preprocessing: dict
) -> None:
    """A trunk checkpoint must come from the same fold, seed, trunk settings and shards."""
    wanted = {
        "held-out subject": held_out,
        "seed": seed,
        "trunk settings": trunk_settings(config),
        "preprocessing": preprocessing,
    }
    found = {
        "held-out subject": trunk.get("held_out"),
        "seed": trunk.get("seed"),
        "trunk settings": trunk_settings(TrainConfig.from_dict(trunk.get("config", {}))),
        "preprocessing": trunk.get("preprocessing"),
    }
    if wanted["trunk settings"] is None:
        raise ValueError("oversampler 'input' balances the batches, so it trains its own trunk")
    differing = [name for name in wanted if wanted[name] != found[name]]
    if "end_to_end_head" not in trunk:
        differing.append("format (a checkpoint from before trunk reuse)")
    if differing:
        raise ValueError(
            f"the trunk checkpoint cannot be reused for this fold: it differs in "
            f"{', '.join(differing)}; train without --trunk"
        )


@dataclass
class FoldResult:
    predictions: pd.DataFrame
    history: pd.DataFrame
    checkpoint: dict
    fold: dict
    notes: list[str] = field(default_factory=list)


def split_validation(
    subject_labels: dict[str, list[int]], fraction: float, seed: int, n_classes: int
) -> tuple[list[str], list[str], str | None]:
    """Whole training subjects -> (fit, validation, note). Stratified where possible: among
    seeded random choices, prefer validation sets that cover the most classes while the fit
    set keeps every class it can, then the closest class distribution to the whole."""
    subjects = sorted(subject_labels)
    if len(subjects) < 2:
        return subjects, [], "only one training subject: no validation set, fixed epochs"
    n_val = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    rng = np.random.default_rng(seed)

    def counts(group):
        return np.bincount(np.concatenate([subject_labels[s] for s in group]), minlength=n_classes)

    overall = counts(subjects)
    best, best_score = None, None
    for _ in range(200):
        val = sorted(rng.choice(subjects, n_val, replace=False).tolist())
        fit = [s for s in subjects if s not in val]
        val_counts, fit_counts = counts(val), counts(fit)
        score = (
            ((fit_counts > 0) | (overall == 0)).sum(),
            (val_counts > 0).sum(),
            -np.abs(val_counts / val_counts.sum() - overall / overall.sum()).sum(),
        )
        if best_score is None or score > best_score:
            best, best_score = (fit, val), score
    fit, val = best
    note = None
    missing = [c for c in range(n_classes) if overall[c] and not counts(val)[c]]
    if missing:
        note = (
            f"validation subjects {val} lack classes {missing}: split by whole subjects "
            "could not be fully stratified"
        )
    return fit, val, note


def oversample_features(
    features: np.ndarray, labels: np.ndarray, method: str, seed: int
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Balance dense-layer features with imbalanced-learn, then shuffle (the samplers append
    the new rows grouped by class). Falls back to random over-sampling, with a note, where
    SMOTE/ADASYN cannot run (a class with a single sample, nothing to generate)."""
    from imblearn.over_sampling import ADASYN, SMOTE, RandomOverSampler

    note = None
    smallest = np.bincount(labels)[np.unique(labels)].min()
    if method in ("smote", "adasyn") and smallest < 2:
        note = f"{method}: a class has a single training sample; used random over-sampling"
        method = "random"
    neighbours = int(min(5, smallest - 1)) if smallest > 1 else 1
    sampler = {
        "random": lambda: RandomOverSampler(random_state=seed),
        "smote": lambda: SMOTE(random_state=seed, k_neighbors=neighbours),
        "adasyn": lambda: ADASYN(random_state=seed, n_neighbors=neighbours),
    }[method]()
    if len(np.unique(labels)) < 2:
        note = "a single class in training: nothing to balance"
        balanced_x, balanced_y = features, labels
    else:
        try:
            balanced_x, balanced_y = sampler.fit_resample(features, labels)
        except (ValueError, RuntimeError) as error:  # ADASYN: "no samples will be generated"
            note = f"{method} failed ({error}); used random over-sampling"
            balanced_x, balanced_y = RandomOverSampler(random_state=seed).fit_resample(
                features, labels
            )
    order = np.random.default_rng(seed).permutation(len(balanced_y))
    return balanced_x[order], balanced_y[order], note


def refit_head(
    head: nn.Linear,
    features: np.ndarray,
    labels: np.ndarray,
    epochs: int,
    seed: int,
    batch_size: int = 64,
    learning_rate: float = 0.01,
) -> None:
    """Train the classifier head (softmax regression) on balanced features, in place."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.int64)
    optimiser = torch.optim.SGD(head.parameters(), lr=learning_rate, momentum=0.9)
    head.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(batch_size):
            optimiser.zero_grad()
            nn.functional.cross_entropy(head(x[batch]), y[batch]).backward()
            optimiser.step()


@torch.no_grad()
def recalibrate_batchnorm(model: MSCNN, dataset, device, rows: int, generator) -> None:
    """Re-estimate BatchNorm running statistics for the current weights ("precise BN").

    With few, small batches per epoch the running averages lag far behind the weights, and an
    evaluation-mode model then predicts near chance although it fits its batches. A forward
    pass over (a sample of) the training rows with cumulative averaging fixes that; it uses
    training rows only.
    """
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative moving average over this pass
    chosen = torch.randperm(len(dataset), generator=generator)[:rows]
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, chosen.tolist()), batch_size=64, shuffle=False
    )
    model.train()
    for batch in loader:
        model.features(_to_device(batch, model.streams, device))
    for norm in norms:
        norm.momentum = 0.1
    model.eval()


def _to_device(batch: dict, streams, device) -> dict:
    return {s: batch[s].to(device, non_blocking=True) for s in streams}


@torch.no_grad()
def predict(
    model: MSCNN, dataset: ShardDataset, device, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """(dense features, class probabilities) of every row of a dataset, in order."""
    model.eval()
    features, probabilities = [], []
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    for batch in loader:
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            dense = model.features(_to_device(batch, model.streams, device))
            logits = model.head(dense)
        features.append(dense.float().cpu())
        probabilities.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(features).numpy(), torch.cat(probabilities).numpy()


def _scores(labels: np.ndarray, probabilities: np.ndarray, n_classes: int) -> dict:
    predicted = probabilities.argmax(1)
    loss = float(
        nn.functional.nll_loss(
            torch.log(torch.as_tensor(probabilities) + 1e-12),
            torch.as_tensor(labels, dtype=torch.int64),
        )
    )
    return {
        "loss": loss,
        "accuracy": float((predicted == labels).mean()),
        "f1": float(
            f1_score(labels, predicted, labels=range(n_classes), average="macro", zero_division=0)
        ),
    }


def shard_preprocessing(attrs) -> dict:
    """A shard's upstream parameters (evm, flow, masks, shards) and the versions that made it;
    params is {} for shards written without them (e.g. by tests)."""
    return {
        "params": json.loads(attrs.get("params", "{}")),
        "mer_version": str(attrs.get("mer_version", "")),
        "opencv_version": str(attrs.get("opencv_version", "")),
    }


def choose_device(threads: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(threads)
    return torch.device("cpu")


def _fold_fingerprint(shard_paths, held_out: str, config: TrainConfig, seed: int) -> dict:
    """What a resume file must match to be continued: the same fold of the same data."""
    return {
        "held_out": held_out,
        "seed": seed,
        "config": json.loads(json.dumps(asdict(config))),
        # Size and modification time, not a hash: hashing real shards (GBs) at every start
        # would cost more than an epoch; a rewritten shard gets a new mtime.
        "shards": sorted(
            [str(path), os.stat(path).st_size, os.stat(path).st_mtime_ns] for path in shard_paths
        ),
        "mer_version": __version__,
    }


def _rng_states(generator: torch.Generator) -> dict:
    """Every random state the epoch loop draws from, as tensors and plain types (so that
    torch.load(weights_only=True) can read them back)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.as_tensor(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
        "loader": generator.get_state(),
    }


def _restore_rng_states(states: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(states["torch"])
    kind, keys, position, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = states["python"]
    random.setstate((version, tuple(internal), gauss_next))
    generator.set_state(states["loader"])


def load_resume(path, fingerprint: dict, log=print) -> dict | None:
    """The epoch checkpoint at `path` if it belongs to this very fold, else None (with a
    note: a mismatched or unreadable file is ignored and overwritten, never trusted)."""
    if path is None or not os.path.exists(path):
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged file: start over rather than fail
        log(f"note: ignoring unreadable epoch checkpoint {path} ({error}); starting at epoch 1")
        return None
    if state.get("fingerprint") != fingerprint:
        log(f"note: epoch checkpoint {path} is from another configuration or data; starting over")
        return None
    return state


def save_resume(path, state: dict) -> None:
    from mer.store.files import atomic_path

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def train_fold(
    shard_paths,
    held_out: str,
    config: TrainConfig,
    seed: int,
    threads: int = 1,
    log=print,
    resume_path=None,
    trunk: dict | None = None,
) -> FoldResult:
    """Train on every subject but `held_out`, test on its un-augmented samples.

    With `trunk`, the checkpoint of the same fold of a variant that differs only in
    HEAD_SETTINGS, the trunk training is taken from it (weights, end-to-end head, history)
    and only the head refit runs: on CPU the result is bit-identical to training anew.

    With `resume_path`, the loop state (weights, optimiser, history, best epoch, random
    states) is saved there atomically after every epoch, and a run that finds a matching file
    continues after its last epoch: on CPU it ends bit-identical to an uninterrupted run.
    """
    device = choose_device(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    notes = []

    # Labels of the training subjects' originals, for the validation split; of the held-out
    # shard only its subject attribute is read here.
    subject_labels, classes, subjects = {}, None, set()
    preprocessing = {}  # shard -> its upstream parameters and versions, for the checkpoint
    for path in shard_paths:
        with open_shard(path) as shard:
            subject = str(shard.attrs["subject"])
            classes = classes or json.loads(shard.attrs["classes"])
            subjects.add(subject)
            preprocessing[str(path)] = shard_preprocessing(shard.attrs)
            if subject != held_out:
                originals = shard["augmentation"][:] == 0
                subject_labels[subject] = shard["label"][:][originals].astype(int)
    if held_out not in subjects:
        raise ValueError(f"held-out subject {held_out!r} has no shard among the inputs")
    if len({json.dumps(p, sort_keys=True) for p in preprocessing.values()}) > 1:
        raise ValueError(
            "the shards were made with different preprocessing parameters; rebuild them with "
            f"one configuration: {json.dumps(preprocessing, sort_keys=True)}"
        )
    n_classes = len(classes)
    fit_subjects, val_subjects, note = split_validation(
        subject_labels, config.validation_fraction, seed, n_classes
    )
    if note:
        notes.append(note)
    assert held_out not in fit_subjects and held_out not in val_subjects
    fit_set = ShardDataset(shard_paths, fit_subjects)
    val_set = ShardDataset(shard_paths, val_subjects, augmentations={0}) if val_subjects else None
    absent = sorted(set(range(n_classes)) - set(fit_set.labels.tolist()))
    if absent:
        notes.append(
            f"classes {[classes[c] for c in absent]} are absent from this fold's "
            "training set: the model cannot predict them"
        )
    for message in notes:
        log(f"note: {message}")

    model = MSCNN(config.streams, n_classes, config.dense_units).to(device)
    optimiser = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=device.type == "cuda")
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if config.oversampler == "input":  # balance the batches (for comparison with the paper's)
        counts = np.bincount(fit_set.labels.numpy(), minlength=n_classes)
        weights = 1.0 / counts[fit_set.labels.numpy()]
        sampler = torch.utils.data.WeightedRandomSampler(weights, len(fit_set), generator=generator)
    loader = torch.utils.data.DataLoader(
        fit_set,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
    )
    early_stopping = config.early_stopping and val_set is not None
    best = {"score": None, "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    history = []
    first_epoch, finished = 1, False
    fingerprint = _fold_fingerprint(shard_paths, held_out, config, seed) if resume_path else None
    resumed = load_resume(resume_path, fingerprint, log) if trunk is None else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimiser.load_state_dict(resumed["optimiser"])
        scaler.load_state_dict(resumed["scaler"])
        best, history = resumed["best"], resumed["history"]
        finished = resumed["finished"]
        _restore_rng_states(resumed["rng"], generator)
        first_epoch = len(history) + 1
        log(
            f"resumed from {resume_path}: {len(history)} epoch(s) done, "
            + ("loop finished" if finished else f"continuing at epoch {first_epoch}")
        )
    if trunk is not None:
        check_trunk(trunk, held_out, seed, config, next(iter(preprocessing.values())))
        model.load_state_dict(trunk["state_dict"])
        model.head.load_state_dict(trunk["end_to_end_head"])
        best["epoch"] = trunk["best_epoch"]
        history, finished = trunk["history"], True
        log(
            f"trunk taken from a checkpoint of the same fold (over-sampler "
            f"{trunk['config']['oversampler']}): {len(history)} epochs, best {best['epoch']}"
        )
    for epoch in range(first_epoch, config.max_epochs + 1):
        if finished:
            break
        start = time.perf_counter()
        model.train()
        losses, correct, seen, predicted_all, labels_all = 0.0, 0, 0, [], []
        for batch in loader:
            labels = batch["label"].to(device)
            optimiser.zero_grad()
            with torch.autocast(device.type, enabled=device.type == "cuda"):
                logits = model(_to_device(batch, model.streams, device))
                loss = nn.functional.cross_entropy(logits, labels)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            losses += loss.item() * len(labels)
            predicted = logits.argmax(1)
            correct += int((predicted == labels).sum())
            seen += len(labels)
            predicted_all.append(predicted.cpu())
            labels_all.append(labels.cpu())
        recalibrate_batchnorm(model, fit_set, device, config.batchnorm_rows, generator)
        row = {
            "epoch": epoch,
            "train_loss": losses / seen,
            "train_accuracy": correct / seen,
            "train_f1": float(
                f1_score(
                    torch.cat(labels_all),
                    torch.cat(predicted_all),
                    labels=range(n_classes),
                    average="macro",
                    zero_division=0,
                )
            ),
        }
        if val_set is not None:
            _, val_probabilities = predict(model, val_set, device)
            scores = _scores(val_set.labels.numpy(), val_probabilities, n_classes)
            row.update({f"val_{k}": v for k, v in scores.items()})
        row["seconds"] = time.perf_counter() - start
        history.append(row)
        log(
            " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        )
        if early_stopping:
            score = -row["val_loss"] if config.monitor == "val_loss" else row["val_f1"]
            if best["score"] is None or score > best["score"]:
                best = {"score": score, "epoch": epoch, "state": copy.deepcopy(model.state_dict())}
            elif epoch - best["epoch"] >= config.patience:
                log(f"early stop at epoch {epoch}: best {config.monitor} at epoch {best['epoch']}")
                finished = True
        finished = finished or epoch == config.max_epochs
        if resume_path:
            save_resume(
                resume_path,
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scaler": scaler.state_dict(),
                    "best": best,
                    "history": history,
                    "finished": finished,
                    "rng": _rng_states(generator),
                },
            )
    if trunk is None and early_stopping:
        model.load_state_dict(best["state"])
    elif trunk is None:
        best["epoch"] = len(history)
    # The head as trained end to end, before any refit: what a variant taking this trunk needs.
    end_to_end_head = {k: v.detach().cpu().clone() for k, v in model.head.state_dict().items()}

    oversampler_subjects = []
    if config.oversampler in ("random", "smote", "adasyn"):
        fit_features, _ = predict(model, fit_set, device)
        balanced_x, balanced_y, note = oversample_features(
            fit_features, fit_set.labels.numpy(), config.oversampler, seed
        )
        if note:
            notes.append(note)
            log(f"note: {note}")
        model.head.cpu()
        refit_head(model.head, balanced_x, balanced_y, config.head_epochs, seed, config.batch_size)
        model.head.to(device)
        oversampler_subjects = sorted(set(fit_set.subject))
        log(
            f"head refitted on {len(balanced_y)} balanced features of {len(fit_set)} "
            f"training rows ({config.oversampler})"
        )

    test_set = ShardDataset(shard_paths, {held_out}, augmentations={0})
    _, test_probabilities = predict(model, test_set, device)
    predictions = pd.DataFrame(
        {
            "sample": test_set.sample,
            "subject": test_set.subject,
            "true_label": [classes[i] for i in test_set.labels.numpy()],
            "predicted_label": [classes[i] for i in test_probabilities.argmax(1)],
        }
    )
    for index, name in enumerate(classes):
        predictions[f"p_{name}"] = test_probabilities[:, index]
    fold = {
        "held_out": held_out,
        "seed": seed,
        "device": device.type,
        "train_subjects": sorted(fit_subjects),
        "validation_subjects": sorted(val_subjects),
        "test_subjects": [held_out],
        "counts": {
            "train_rows": len(fit_set),
            "train_clips": int((fit_set.augmentation == 0).sum()),
            "validation_clips": len(val_set) if val_set else 0,
            "test_clips": len(test_set),
        },
        "oversampler": config.oversampler,
        "oversampler_subjects": oversampler_subjects,
        "epochs_run": len(history),
        "best_epoch": best["epoch"],
        "notes": notes,
    }
    checkpoint = {
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "classes": list(classes),
        "held_out": held_out,
        "seed": seed,
        "mer_version": __version__,
        # What `mer predict` needs to preprocess a new clip the same way (plain JSON values,
        # so torch.load(weights_only=True) reads it).
        "preprocessing": next(iter(preprocessing.values())),
        # For variants that share this trunk (HEAD_SETTINGS): see train_fold's `trunk`.
        "end_to_end_head": end_to_end_head,
        "history": history,
        "best_epoch": best["epoch"],
    }
    return FoldResult(predictions, pd.DataFrame(history), checkpoint, fold, notes)


def load_model(checkpoint: dict) -> MSCNN:
    """A trained model from a checkpoint dict (torch.load(path, weights_only=True))."""
    config = checkpoint["config"]
    model = MSCNN(config["streams"], len(checkpoint["classes"]), config["dense_units"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()

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
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from mer import __version__
from mer.learn import head, inference, resume, split
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


def choose_device(threads: int) -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    torch.set_num_threads(threads)
    return torch.device("cpu")


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
            preprocessing[str(path)] = split.shard_preprocessing(shard.attrs)
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
    fit_subjects, val_subjects, note = split.split_validation(
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
    fingerprint = (
        resume.fold_fingerprint(shard_paths, held_out, config, seed) if resume_path else None
    )
    resumed = resume.load_resume(resume_path, fingerprint, log) if trunk is None else None
    if resumed is not None:
        model.load_state_dict(resumed["model"])
        optimiser.load_state_dict(resumed["optimiser"])
        scaler.load_state_dict(resumed["scaler"])
        best, history = resumed["best"], resumed["history"]
        finished = resumed["finished"]
        resume.restore_rng_states(resumed["rng"], generator)
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
                logits = model(inference.to_device(batch, model.streams, device))
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
        inference.recalibrate_batchnorm(model, fit_set, device, config.batchnorm_rows, generator)
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
            _, val_probabilities = inference.predict(model, val_set, device)
            scores = inference.scores(val_set.labels.numpy(), val_probabilities, n_classes)
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
            resume.save_resume(
                resume_path,
                {
                    "fingerprint": fingerprint,
                    "model": model.state_dict(),
                    "optimiser": optimiser.state_dict(),
                    "scaler": scaler.state_dict(),
                    "best": best,
                    "history": history,
                    "finished": finished,
                    "rng": resume.rng_states(generator),
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
        fit_features, _ = inference.predict(model, fit_set, device)
        balanced_x, balanced_y, note = head.oversample_features(
            fit_features, fit_set.labels.numpy(), config.oversampler, seed
        )
        if note:
            notes.append(note)
            log(f"note: {note}")
        model.head.cpu()
        head.refit_head(
            model.head, balanced_x, balanced_y, config.head_epochs, seed, config.batch_size
        )
        model.head.to(device)
        oversampler_subjects = sorted(set(fit_set.subject))
        log(
            f"head refitted on {len(balanced_y)} balanced features of {len(fit_set)} "
            f"training rows ({config.oversampler})"
        )

    test_set = ShardDataset(shard_paths, {held_out}, augmentations={0})
    _, test_probabilities = inference.predict(model, test_set, device)
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

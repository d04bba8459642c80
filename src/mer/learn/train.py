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
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import f1_score
from torch import nn

from mer import __version__, compute
from mer.learn import faults, fusion, head, inference, pretrained, resume, settings, split
from mer.learn.model import FUSIONS, MSCNN, MSCNN_STREAMS
from mer.learn.precision import PRECISIONS, Precision, resolve
from mer.learn.predictions import predictions_table
from mer.learn.reader import ShardDataset
from mer.settings import defaults

OVERSAMPLERS = ("none", "random", "smote", "adasyn", "input")
MONITORS = ("val_loss", "val_f1")
SCHEMA = defaults("train")


@dataclass
class TrainConfig:
    """The `train` section. Its defaults and what each key means are in the config schema
    (workflow/schemas/config.schema.yaml, read by mer.settings)."""

    streams: tuple = MSCNN_STREAMS
    dense_units: int = SCHEMA["dense_units"]
    learning_rate: float = SCHEMA["learning_rate"]
    momentum: float = SCHEMA["momentum"]
    weight_decay: float = SCHEMA["weight_decay"]
    batch_size: int = SCHEMA["batch_size"]
    max_epochs: int = SCHEMA["max_epochs"]
    early_stopping: bool = SCHEMA["early_stopping"]
    patience: int = SCHEMA["patience"]
    monitor: str = SCHEMA["monitor"]
    validation_fraction: float = SCHEMA["validation_fraction"]
    oversampler: str = SCHEMA["oversampler"]
    head_epochs: int = SCHEMA["head_epochs"]
    batchnorm_rows: int = SCHEMA["batchnorm_rows"]
    precision: str = SCHEMA["precision"]
    label_smoothing: float = SCHEMA["label_smoothing"]
    stream_dropout: float = SCHEMA["stream_dropout"]
    fusion: str = SCHEMA["fusion"]
    init_weights: str | None = SCHEMA["init_weights"]

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        values = dict(values)
        values["streams"] = tuple(values.get("streams", MSCNN_STREAMS))
        config = cls(**values)
        if (
            config.oversampler not in OVERSAMPLERS
            or config.monitor not in MONITORS
            or config.precision not in PRECISIONS
            or config.fusion not in FUSIONS
        ):
            raise ValueError(
                f"oversampler must be one of {OVERSAMPLERS}, monitor one of {MONITORS}, "
                f"precision one of {PRECISIONS}, fusion one of {FUSIONS}"
            )
        return config


def trunk_settings(config: TrainConfig) -> dict | None:
    """What the trained trunk depends on (mer.learn.settings), its streams as a list; None
    where it cannot be shared."""
    values = settings.trunk_settings(asdict(config))
    return None if values is None else dict(values, streams=list(values["streams"]))


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
    seconds: dict = field(default_factory=dict)  # wall time per phase of train_fold


def choose_device(threads: int) -> torch.device:
    """CUDA if present, else the CPU; with the compute mode's settings applied
    (mer.compute: portable math runs on a fixed number of threads)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    compute.configure(device, threads)
    return device


@dataclass
class _Loop:
    """The epoch loop's state; a resume file saves all of it but the loader's setup."""

    model: MSCNN
    precision: Precision
    optimiser: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    generator: torch.Generator
    loader: torch.utils.data.DataLoader
    early_stopping: bool
    best: dict
    history: list[dict] = field(default_factory=list)
    first_epoch: int = 1
    finished: bool = False


def train_fold(
    shard_paths,
    held_out: str,
    config: TrainConfig,
    seed: int,
    threads: int = 1,
    log=print,
    resume_path=None,
    trunk: dict | None = None,
    resume_every: float = 0.0,
) -> FoldResult:
    """Train on every subject but `held_out`, test on its un-augmented samples.

    With `trunk`, the checkpoint of the same fold of a variant that differs only in
    settings.HEAD_SETTINGS, the trunk training is taken from it (weights, end-to-end head, history)
    and only the head refit runs: on CPU the result is bit-identical to training anew.

    With `resume_path`, the loop state (weights, optimiser, history, best epoch, random
    states) is saved there atomically after an epoch once `resume_every` seconds have passed
    since the last save (0: after every epoch), and a run that finds a matching file continues
    after its last saved epoch: on CPU it ends bit-identical to an uninterrupted run.
    """
    clock = _PhaseClock()
    device = _seed_and_choose_device(seed, threads)
    data = split.fold_data(shard_paths, held_out, config.validation_fraction, seed, log)
    loop = _new_loop(data, config, seed, device)
    fingerprint = (
        resume.fold_fingerprint(shard_paths, held_out, config, seed) if resume_path else None
    )
    if trunk is None:
        _continue_loop(loop, resume.load_resume(resume_path, fingerprint, log), resume_path, log)
    else:
        check_trunk(trunk, held_out, seed, config, data.preprocessing)
        _take_trunk(loop, trunk, log)
    saver = resume.ResumeSaver(resume_path, resume_every, fingerprint)
    clock.lap("setup")
    _run_epochs(loop, data, config, device, log, saver)
    clock.lap("epochs")
    # From here on as a reloaded checkpoint computes (`mer predict`): default memory format.
    loop.model.to(memory_format=torch.contiguous_format)
    end_to_end_head = _keep_trunk_weights(loop, reused=trunk is not None)
    oversampler_subjects = head.refit(loop.model, data, config, seed, device, log)
    beyond = _fit_fusion(loop.model, data, device, log)
    clock.lap("head")
    if config.init_weights:
        beyond["init_weights"] = {
            "path": str(config.init_weights),
            "sha256": pretrained.file_digest(config.init_weights),
        }
    test_set = ShardDataset(shard_paths, {held_out}, augmentations={0})
    predictions = _predict_test(loop.model, test_set, data.classes, device)
    fold = _fold_record(data, loop, test_set, config, seed, device, oversampler_subjects)
    checkpoint = _checkpoint(loop, data, config, seed, end_to_end_head)
    fold.update(beyond)  # absent for the method's settings: its records stay as they were
    checkpoint.update(beyond)
    clock.lap("test")
    history = pd.DataFrame(loop.history)
    return FoldResult(predictions, history, checkpoint, fold, data.notes, clock.seconds)


class _PhaseClock:
    """Wall seconds per named phase, each lap since the previous one."""

    def __init__(self):
        self.seconds, self.last = {}, time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] = now - self.last
        self.last = now


def _seed_and_choose_device(seed: int, threads: int) -> torch.device:
    """The device, with every global random state seeded."""
    device = choose_device(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    return device


def _new_loop(data: split.FoldData, config: TrainConfig, seed: int, device) -> _Loop:
    """A freshly initialised model, its optimiser and the loader of the training rows."""
    input_px = getattr(data.fit_set, config.streams[0]).shape[-1]
    precision = resolve(config.precision, device, input_px)
    model = MSCNN(
        config.streams, data.n_classes, config.dense_units, config.fusion, config.stream_dropout
    )
    if config.init_weights:
        pretrained.initialise_trunks(model, config.init_weights)
    model = precision.prepare(model.to(device))
    optimiser = torch.optim.SGD(
        model.parameters(),
        lr=config.learning_rate,
        momentum=config.momentum,
        weight_decay=config.weight_decay,
        fused=True,  # one pass over each parameter: the step is memory-bound on 3 x 11 M weights
    )
    scaler = torch.amp.GradScaler(device.type, enabled=precision.scales_loss)
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if config.oversampler == "input":  # balance the batches (for comparison with the paper's)
        labels = data.fit_set.labels.numpy()
        weights = 1.0 / np.bincount(labels, minlength=data.n_classes)[labels]
        sampler = torch.utils.data.WeightedRandomSampler(
            weights, len(data.fit_set), generator=generator
        )
    loader = torch.utils.data.DataLoader(
        data.fit_set,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        generator=generator,
    )
    early_stopping = config.early_stopping and data.val_set is not None
    best = {"score": None, "epoch": 0, "state": copy.deepcopy(model.state_dict())}
    return _Loop(model, precision, optimiser, scaler, generator, loader, early_stopping, best)


def _continue_loop(loop: _Loop, resumed: dict | None, resume_path, log) -> None:
    """Restore the loop state of a matching resume file (if any) to continue after its epoch."""
    if resumed is None:
        return
    loop.model.load_state_dict(resumed["model"])
    loop.optimiser.load_state_dict(resumed["optimiser"])
    loop.scaler.load_state_dict(resumed["scaler"])
    loop.best, loop.history = resumed["best"], resumed["history"]
    loop.finished = resumed["finished"]
    resume.restore_rng_states(resumed["rng"], loop.generator)
    loop.first_epoch = len(loop.history) + 1
    log(
        f"resumed from {resume_path}: {len(loop.history)} epoch(s) done, "
        + ("loop finished" if loop.finished else f"continuing at epoch {loop.first_epoch}")
    )


def _take_trunk(loop: _Loop, trunk: dict, log) -> None:
    """Take the trained trunk of a checked checkpoint: the epoch loop then has nothing to do."""
    loop.model.load_state_dict(trunk["state_dict"])
    loop.model.head.load_state_dict(trunk["end_to_end_head"])
    loop.best["epoch"] = trunk["best_epoch"]
    loop.history, loop.finished = trunk["history"], True
    log(
        f"trunk taken from a checkpoint of the same fold (over-sampler "
        f"{trunk['config']['oversampler']}): {len(loop.history)} epochs, "
        f"best {loop.best['epoch']}"
    )


def _run_epochs(loop: _Loop, data: split.FoldData, config: TrainConfig, device, log, saver) -> None:
    """Train epoch after epoch until early stopping or max_epochs, keeping the best state;
    the saver writes the loop state for a resume when its time has come."""
    for epoch in range(loop.first_epoch, config.max_epochs + 1):
        if loop.finished:
            break
        try:
            row = _train_epoch(loop, data, config, device, epoch)
        except torch.OutOfMemoryError as error:
            raise faults.out_of_memory(error, data.held_out, epoch, config) from error
        faults.check_finite(row, epoch, data.held_out, config)
        loop.history.append(row)
        log(
            " ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items())
        )
        if loop.early_stopping:
            score = -row["val_loss"] if config.monitor == "val_loss" else row["val_f1"]
            if loop.best["score"] is None or score > loop.best["score"]:
                state = copy.deepcopy(loop.model.state_dict())
                loop.best = {"score": score, "epoch": epoch, "state": state}
            elif epoch - loop.best["epoch"] >= config.patience:
                log(
                    f"early stop at epoch {epoch}: best {config.monitor} at epoch "
                    f"{loop.best['epoch']}"
                )
                loop.finished = True
        loop.finished = loop.finished or epoch == config.max_epochs
        saver.after_epoch(loop)


def _train_epoch(
    loop: _Loop, data: split.FoldData, config: TrainConfig, device, epoch: int
) -> dict:
    """One pass over the training rows, then precise BatchNorm and validation: the history row."""
    start = time.perf_counter()
    model = loop.model
    model.train()
    losses, correct, seen, predicted_all, labels_all = 0.0, 0, 0, [], []
    for batch in loop.loader:
        labels = batch["label"].to(device)
        loop.optimiser.zero_grad()
        with loop.precision.autocast():
            inputs = loop.precision.inputs(batch, model.streams, device)
            logits, loss = _logits_and_loss(model, inputs, labels, config.label_smoothing)
        loop.scaler.scale(loss).backward()
        loop.scaler.step(loop.optimiser)
        loop.scaler.update()
        losses += loss.item() * len(labels)
        predicted = logits.argmax(1)
        correct += int((predicted == labels).sum())
        seen += len(labels)
        predicted_all.append(predicted.cpu())
        labels_all.append(labels.cpu())
    inference.recalibrate_batchnorm(
        model, data.fit_set, device, config.batchnorm_rows, loop.generator, loop.precision
    )
    row = {
        "epoch": epoch,
        "train_loss": losses / seen,
        "train_accuracy": correct / seen,
        "train_f1": float(
            f1_score(
                torch.cat(labels_all),
                torch.cat(predicted_all),
                labels=range(data.n_classes),
                average="macro",
                zero_division=0,
            )
        ),
    }
    if data.val_set is not None:
        _, val_probabilities = inference.predict(model, data.val_set, device)
        scores = inference.scores(data.val_set.labels.numpy(), val_probabilities, data.n_classes)
        row.update({f"val_{k}": v for k, v in scores.items()})
    row["seconds"] = time.perf_counter() - start
    return row


def _logits_and_loss(model: MSCNN, inputs: dict, labels, label_smoothing: float):
    """A batch's logits and loss: the output's cross-entropy (dense fusion), or the sum of the
    streams' cross-entropies (late fusion: each stream's classifier learns on its own)."""
    features = model.features(inputs)
    if model.fusion == "dense":
        logits = model.classify(features).float()
        return logits, nn.functional.cross_entropy(logits, labels, label_smoothing=label_smoothing)
    per_stream = model.stream_logits(features).float()
    loss = sum(
        nn.functional.cross_entropy(per_stream[:, i], labels, label_smoothing=label_smoothing)
        for i in range(len(model.streams))
    )
    return model.fuse(per_stream), loss


def _keep_trunk_weights(loop: _Loop, reused: bool) -> dict:
    """Load the best epoch's weights (with early stopping) and return the head as trained end
    to end, before any refit: what a variant taking this trunk needs."""
    if not reused and loop.early_stopping:
        loop.model.load_state_dict(loop.best["state"])
    elif not reused:
        loop.best["epoch"] = len(loop.history)
    return {k: v.detach().cpu().clone() for k, v in loop.model.head.state_dict().items()}


def _fit_fusion(model: MSCNN, data: split.FoldData, device, log) -> dict:
    """Late fusion: the streams' weights, fitted on the validation subjects only ({} for
    dense fusion)."""
    if model.fusion != "late":
        return {}
    if data.val_set is None:
        data.notes.append("no validation subjects: late fusion keeps equal stream weights")
        log(f"note: {data.notes[-1]}")
        weights = dict(zip(model.streams, model.fusion_weights.tolist(), strict=True))
    else:
        weights = fusion.fit_fusion_weights(model, data.val_set, device)
    log(f"fusion weights {weights}, fitted on validation subjects {sorted(data.val_subjects)}")
    return {"fusion_weights": weights}


def _predict_test(model: MSCNN, test_set: ShardDataset, classes: list[str], device) -> pd.DataFrame:
    """The held-out subject's predictions: sample, subject, labels, then p_<class> per class."""
    _, test_probabilities = inference.predict(model, test_set, device)
    return predictions_table(
        test_set.sample,
        test_set.subject,
        test_set.labels.numpy(),
        test_probabilities.argmax(1),
        test_probabilities,
        classes,
    )


def _fold_record(
    data: split.FoldData,
    loop: _Loop,
    test_set: ShardDataset,
    config: TrainConfig,
    seed: int,
    device,
    oversampler_subjects: list[str],
) -> dict:
    """fold.json: who trained, validated and tested, with counts, epochs and notes."""
    return {
        "held_out": data.held_out,
        "seed": seed,
        "device": device.type,
        "precision": loop.precision.name,
        "compute": compute.fingerprint(device, loop.precision.name),
        "train_subjects": sorted(data.fit_subjects),
        "validation_subjects": sorted(data.val_subjects),
        "test_subjects": [data.held_out],
        "counts": {
            "train_rows": len(data.fit_set),
            "train_clips": int((data.fit_set.augmentation == 0).sum()),
            "validation_clips": len(data.val_set) if data.val_set else 0,
            "test_clips": len(test_set),
        },
        "oversampler": config.oversampler,
        "oversampler_subjects": oversampler_subjects,
        "epochs_run": len(loop.history),
        "best_epoch": loop.best["epoch"],
        "notes": data.notes,
    }


def _checkpoint(
    loop: _Loop, data: split.FoldData, config: TrainConfig, seed: int, end_to_end_head: dict
) -> dict:
    """checkpoint.pt: the trained model with what reloading, predicting and reusing need."""
    return {
        "state_dict": {k: v.cpu() for k, v in loop.model.state_dict().items()},
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "classes": list(data.classes),
        "held_out": data.held_out,
        "seed": seed,
        "mer_version": __version__,
        # What `mer predict` needs to preprocess a new clip the same way (plain JSON values,
        # so torch.load(weights_only=True) reads it).
        "preprocessing": data.preprocessing,
        # For variants that share this trunk (settings.HEAD_SETTINGS): see train_fold's `trunk`.
        "end_to_end_head": end_to_end_head,
        "history": loop.history,
        "best_epoch": loop.best["epoch"],
    }


def load_model(checkpoint: dict) -> MSCNN:
    """A trained model from a checkpoint dict (torch.load(path, weights_only=True))."""
    config = checkpoint["config"]
    fusion_kind = config.get("fusion", "dense")  # checkpoints from before late fusion: dense
    model = MSCNN(config["streams"], len(checkpoint["classes"]), config["dense_units"], fusion_kind)
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()

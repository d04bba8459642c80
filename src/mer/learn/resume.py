"""Resuming a killed fold: the fingerprint a resume file must match, the random states of the
epoch loop, and the resume file itself (read back only if it belongs to this very fold)."""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import asdict

import numpy as np
import torch

from mer import __version__, compute
from mer.store import files


def fold_fingerprint(shard_paths, held_out: str, config, seed: int) -> dict:
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
        # A loop computed in another mode (other kernels or threads) is not continued.
        "compute": compute.mode(),
    }


def rng_states(generator: torch.Generator) -> dict:
    """Every random state the epoch loop draws from, as tensors and plain types (so that
    torch.load(weights_only=True) can read them back)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.as_tensor(keys.astype(np.int64)), position, has_gauss, gauss],
        "python": random.getstate(),
        "loader": generator.get_state(),
    }


def restore_rng_states(states: dict, generator: torch.Generator) -> None:
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
        state = files.load_checkpoint(path, map_location="cpu")  # CRC-checked: no flipped bit
    except Exception as error:  # a damaged file: start over rather than fail
        log(f"note: ignoring unreadable epoch checkpoint {path} ({error}); starting at epoch 1")
        return None
    if state.get("fingerprint") != fingerprint:
        log(f"note: epoch checkpoint {path} is from another configuration or data; starting over")
        return None
    return state


def save_resume(path, state: dict) -> None:
    with files.atomic_path(path) as tmp:
        torch.save(state, tmp)


class ResumeSaver:
    """Writes the epoch loop's state to `path` after an epoch once `every` seconds have passed
    since the last write. The file holds the weights, the optimiser's momenta and the best
    state (three models: ~400 MB for three streams), so writing it after each short epoch
    costs about a tenth of the training; a killed job loses at most `every` s plus an epoch."""

    def __init__(self, path, every: float, fingerprint: dict | None):
        self.path, self.every, self.fingerprint = path, every, fingerprint
        self.last = time.monotonic()

    def after_epoch(self, loop) -> None:
        if not self.path or time.monotonic() - self.last < self.every:
            return
        save_resume(
            self.path,
            {
                "fingerprint": self.fingerprint,
                "model": loop.model.state_dict(),
                "optimiser": loop.optimiser.state_dict(),
                "scaler": loop.scaler.state_dict(),
                "best": loop.best,
                "history": loop.history,
                "finished": loop.finished,
                "rng": rng_states(loop.generator),
            },
        )
        self.last = time.monotonic()

"""The faults a fold's training meets that its inputs do not explain: a diverging loss and a GPU
out of memory. Each becomes an error naming the fold, where it happened and the setting to change
(docs/troubleshooting.md)."""

from __future__ import annotations

import math


class FoldError(ValueError):
    """A fold that cannot go on; the message names the fold, the cause and the fix."""


def check_finite(row: dict, epoch: int, held_out: str, config) -> None:
    """Stop a diverged fold: a NaN or infinite loss would only give NaN or random predictions."""
    bad = {k: v for k, v in row.items() if k.endswith("loss") and not math.isfinite(v)}
    if bad:
        losses = ", ".join(f"{k} {v}" for k, v in bad.items())
        raise FoldError(
            f"fold of held-out subject {held_out}: {losses} at epoch {epoch}; the training "
            f"diverged with train.learning_rate {config.learning_rate} (batch_size "
            f"{config.batch_size}, precision {config.precision}): lower train.learning_rate "
            "in config.yaml (or try precision fp32) and rerun; no predictions were written"
        )


def out_of_memory(error: BaseException, held_out: str, epoch: int, config) -> FoldError:
    first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
    return FoldError(
        f"fold of held-out subject {held_out}: the GPU ran out of memory at epoch {epoch} "
        f"({first_line}); lower train.batch_size (now {config.batch_size}) or "
        "shards.input_size in config.yaml, or run one fold per GPU (SLURM profile), and rerun"
    )

"""Which training settings the trained trunk depends on (torch-free: the workflow's plan reads it).

The head refit after the dense layer reads only HEAD_SETTINGS, so variants that differ in
nothing else train the same trunk and may take it from one another's checkpoint.
"""

from __future__ import annotations

HEAD_SETTINGS = ("oversampler", "head_epochs")


def trunk_settings(train: dict) -> dict | None:
    """What the trained trunk of these training settings depends on; None where it cannot be
    shared ("input" over-sampling balances the training batches themselves)."""
    if train["oversampler"] == "input":
        return None
    return {key: value for key, value in train.items() if key not in HEAD_SETTINGS}

"""The published numbers of the method's paper (CASME II, SAMM) and of the MEGC 2019 composite,
as tables and as the markdown sections of the summary. Copied from the publications, never
computed here."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class PublishedResult:
    """One row of the method paper's comparison tables, values as printed there (text, so
    that their precision is kept); None where our copy of the table has no value."""

    dataset: str  # "CASME II" or "SAMM"
    method: str
    f1: str | None
    accuracy: str | None
    # Our experiment that corresponds to the row, if any: the `paper` target runs one
    # experiment per row under this name (descriptor methods: their registry name).
    experiment: str | None = None


# Source: the comparison tables of the MSCNN paper. In our copy the last two rows of each table
# have a value only in the F1 column; the lost accuracies stay None.
PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult("CASME II", "ELRCN-TE", f1="0.5000", accuracy="0.5244", experiment="elrcn"),
    PublishedResult("CASME II", "LBP-SIP", f1="0.4480", accuracy="0.4656", experiment="lbpsip"),
    PublishedResult("CASME II", "FDM", f1="0.4053", accuracy="0.4593", experiment="fdm"),
    PublishedResult(
        "CASME II",
        "Adaptive MM + LBP-TOP",
        f1=None,
        accuracy="0.5191",
        experiment="adaptive_lbptop",
    ),
    PublishedResult(
        "CASME II", "EVM + optical flow", f1="0.4705", accuracy=None, experiment="evm_flow"
    ),
    PublishedResult("CASME II", "MSCNN", f1="0.5650", accuracy=None, experiment="mscnn"),
    PublishedResult("SAMM", "HOOF", f1="0.33", accuracy="0.4217", experiment="hoof"),
    PublishedResult("SAMM", "HOG3D", f1="0.22", accuracy="0.3416", experiment="hog3d"),
    PublishedResult("SAMM", "LBP-TOP", f1="0.1768", accuracy="0.3556", experiment="lbptop"),
    PublishedResult("SAMM", "MSCNN", f1="0.3173", accuracy=None, experiment="mscnn"),
    PublishedResult(
        "SAMM", "EVM + optical flow", f1="0.3569", accuracy=None, experiment="evm_flow"
    ),
)
PUBLISHED_DATASETS = ("CASME II", "SAMM")
COMPOSITE = "MEGC 2019 composite"
# The full composite (442 clips, 68 subjects, LOSO), (method, UF1, UAR) as published
# (MEGC 2019 results: See et al. 2019, Liong et al. 2019, Gan et al. 2019).
PUBLISHED_COMPOSITE = (
    ("LBP-TOP", "0.5882", "0.5785"),
    ("OFF-ApexNet", "0.7196", "0.7096"),
    ("STSTNet", "0.7353", "0.7605"),
)


def published_dataset(dataset: str) -> str | None:
    """'CASME II' / 'SAMM' / the composite for a dataset name such as casme2, CASME_II, samm,
    megc2019; else None."""
    key = re.sub(r"[^a-z0-9]", "", dataset.lower())
    if key in ("casme2", "casmeii"):
        return "CASME II"
    if key == "samm":
        return "SAMM"
    if key.startswith("megc2019") or key == "composite":
        return COMPOSITE
    return None


def published_table(dataset: str | None = None) -> pd.DataFrame:
    """PUBLISHED as a DataFrame with float f1/accuracy (NaN where not available)."""
    rows = [r for r in PUBLISHED if dataset is None or r.dataset == dataset]
    return pd.DataFrame(
        {
            "dataset": [r.dataset for r in rows],
            "method": [r.method for r in rows],
            "f1": [np.nan if r.f1 is None else float(r.f1) for r in rows],
            "accuracy": [np.nan if r.accuracy is None else float(r.accuracy) for r in rows],
            "our_experiment": [r.experiment for r in rows],
        }
    )


def _published_composite_markdown() -> list[str]:
    lines = [
        "",
        f"## Published on the {COMPOSITE} (full composite, LOSO over 68 subjects)",
        "",
        "Copied from the publications, not produced by this workflow. Many later methods "
        "chose their epoch or model on the test subject (leaky), which ours never does; "
        "compare with that in mind.",
        "",
        "| method | UF1 (published) | UAR (published) |",
        "|---|---|---|",
    ]
    return lines + [f"| {method} | {uf1} | {uar} |" for method, uf1, uar in PUBLISHED_COMPOSITE]


def published_markdown(
    dataset: str, synthetic: bool, ours: dict[str, tuple[str, str]] | None = None
) -> list[str]:
    """The published rows of the dataset's table(s), each beside our experiment of that row:
    `ours` maps an experiment to its (macro-F1, accuracy) text; a row whose experiment is not
    in it reads "not run"."""
    ours = ours or {}
    matching = published_dataset(dataset)
    if matching == COMPOSITE:
        return _published_composite_markdown()
    shown = [matching] if matching else list(PUBLISHED_DATASETS)
    lines = [
        "",
        "## Published by the method's authors on CASME II / SAMM",
        "",
        "Copied from the authors' comparison tables, not produced by this workflow. "
        "n/a: no value in our copy of the table (never estimated).",
    ]
    if synthetic:
        lines.append(
            f"These numbers are not comparable with the results above: those are on "
            f"synthetic data ({dataset}), not on CASME II or SAMM."
        )
    elif matching is None:
        lines.append(
            f"These numbers are not comparable with the results above, which are on {dataset!r}."
        )
    else:
        lines.append(
            f"Comparable with ours only as far as the classes, sample selection and protocol "
            f"match the authors' on {matching}."
        )
    for name in shown:
        lines += [
            "",
            f"### Published on {name}",
            "",
            "| method | F1 (published) | accuracy (published) | our experiment "
            "| our macro-F1 (UF1) | our accuracy |",
            "|---|---|---|---|---|---|",
        ]
        for row in (r for r in PUBLISHED if r.dataset == name):
            f1, accuracy = ours.get(row.experiment, ("not run", "not run"))
            lines.append(
                f"| {row.method} | {row.f1 or 'n/a'} | {row.accuracy or 'n/a'} | "
                f"{row.experiment or ''} | {f1} | {accuracy} |"
            )
    return lines

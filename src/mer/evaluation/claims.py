"""The method's claims, checked on whatever experiments a summary holds: each claim compares
two experiments' pooled UF1 (mean over seeds) and says whether the difference exceeds the
training-seed spread. It is the table README's "The method's claims" quotes per regime."""

from __future__ import annotations

# (claim, the experiment that should score higher, the one it should beat); each side lists
# the names the configured experiments, the alpha sweep and the ablation give that run.
CLAIMS = (
    ("EVM magnification (alpha 8) helps", ("mscnn", "alpha_8"), ("alpha_0", "no_magnification")),
    ("alpha 8 beats a stronger alpha 32", ("mscnn", "alpha_8"), ("alpha_32",)),
    (
        "the gain is amplification, not only the temporal band-pass",
        ("mscnn", "alpha_8"),
        ("filter_only",),
    ),
    ("three streams beat the flow stream alone", ("mscnn",), ("evm_flow", "stream_flow")),
    ("the over-sampler after the dense layer helps", ("mscnn",), ("oversampler_none",)),
    ("MSCNN beats LBP-TOP", ("mscnn",), ("lbptop",)),
)


def verdict(better: dict, worse: dict) -> str:
    """`holds` / `reversed` where the UF1 difference exceeds the two runs' seed std summed,
    else `within seed spread`; with one seed the sign alone, labelled as such."""
    difference = better["mean"] - worse["mean"]
    if better["std"] is None or worse["std"] is None:
        return ("holds" if difference > 0 else "reversed") + " (1 seed, no spread)"
    if abs(difference) <= better["std"] + worse["std"]:
        return "within seed spread"
    return "holds" if difference > 0 else "reversed"


def claims_markdown(metrics_by_experiment: dict[str, dict]) -> list[str]:
    """A markdown section with one row per claim whose two experiments are both present."""

    def find(names):
        return next((n for n in names if n in metrics_by_experiment), None)

    rows = []
    for claim, better_names, worse_names in CLAIMS:
        better, worse = find(better_names), find(worse_names)
        if better is None or worse is None:
            continue
        scores = [
            metrics_by_experiment[n]["pooled"]["across_seeds"]["macro_f1"] for n in (better, worse)
        ]
        cells = [
            f"{s['mean']:.3f}" + ("" if s["std"] is None else f" ± {s['std']:.3f}") for s in scores
        ]
        rows.append(f"| {claim} | {better} {cells[0]} | {worse} {cells[1]} | {verdict(*scores)} |")
    if not rows:
        return []
    return [
        "",
        "## The method's claims on this data (UF1, mean ± std over training seeds)",
        "",
        "A claim holds where the first run's UF1 exceeds the second's by more than their seed "
        "std summed, is reversed where it falls short by that much, and is undecided in between. "
        "The spread is over training seeds on one dataset draw only.",
        "",
        "| claim | should be higher | than | verdict |",
        "|---|---|---|---|",
        *rows,
    ]

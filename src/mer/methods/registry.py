"""The registry of comparison methods that are a per-clip descriptor plus the LOSO linear SVM.

One entry per method. The workflow reads it (mer.plan.runs and workflow/rules/methods.smk): an
experiment's `method:` takes an entry's name, the entry's `defaults` are the config section of
the same name, its `inputs` say which per-sample artifact its features job reads, and every
entry gets a features rule and a LOSO-SVM rule. The `paper` target runs one experiment per
entry with a `paper_row`, named after the entry, and the summary shows it beside that row's
published numbers (mer.evaluation.published maps rows to experiments by this name).

Adding a descriptor method (e.g. FDM): write its feature function in its own module, then add
one `Method(...)` to METHODS below, a section in config.yaml and in
workflow/schemas/config.schema.yaml (`tests/methods/test_registry.py` checks they agree), and
its published row's `experiment` in mer.evaluation.published. A method with its own training
(ELRCN-TE) is not an entry here: the plan (mer.plan.runs) knows its experiments, and it
brings its own rules, as MSCNN does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from mer import settings


def _lazy(module: str, name: str) -> Callable:
    """mer.methods.<module>.<name>, imported at its first call: the workflow reads this registry
    at every parse (a dry run too), and the methods' modules (scikit-image, SciPy) take ~0.4 s
    to load."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(f"mer.methods.{module}"), name)(*args, **kwargs)

    call.__name__ = name
    return call


adaptive_features = _lazy("adaptive", "adaptive_features")
adaptive_svm_fold = _lazy("adaptive", "adaptive_svm_fold")
fdm_features, fdm_length = _lazy("fdm", "fdm_features"), _lazy("fdm", "fdm_length")
hog3d_features, hog3d_length = _lazy("hog3d", "hog3d_features"), _lazy("hog3d", "hog3d_length")
hoof_features, hoof_length = _lazy("hoof", "hoof_features"), _lazy("hoof", "hoof_length")
hoof_sequence_features = _lazy("hoof", "hoof_sequence_features")
hoof_sequence_length = _lazy("hoof", "hoof_sequence_length")
lbpsip_features = _lazy("lbpsip", "lbpsip_features")
lbpsip_length = _lazy("lbpsip", "lbpsip_length")
lbptop_features = _lazy("lbptop", "lbptop_features")
lbptop_length = _lazy("lbptop", "lbptop_length")

# What a method's features job reads, per sample:
#   clip: the raw onset..offset gray frames (face crop if configured), resized to `size`;
#   flow: the onset->apex flow `flow_uv` of the experiment's chain, flow/<key>/<sample>.npz
#         (the artifact MSCNN's masks read; never recomputed).
INPUTS = ("clip", "flow")
# Parameters of the LOSO SVM, not of the features (every method's section has them).
SVM_PARAMETERS = ("C",)


@dataclass(frozen=True)
class Method:
    """A descriptor + linear SVM method, as the workflow and the summary see it."""

    name: str  # experiments' `method:`, the config section, the artifacts' key tag
    inputs: str  # one of INPUTS
    features: Callable  # (clip or flow_uv array, section) -> feature vector
    length: Callable[[dict], int]  # (section) -> len(features)
    paper_row: str | None = None  # its row in the method paper's tables (published.py)
    summary: str = field(default="", compare=False)  # one line for docs and --help
    # The LOSO fold, if not the plain linear SVM: (features (N, length), labels, subjects,
    # samples, classes, held_out, seed, section) -> (predictions, fold record).
    fold: Callable | None = None
    needs_fps: bool = False  # its features read the clip's frame rate (section["fps"])

    @property
    def defaults(self) -> dict:
        """The config section's defaults (incl. C; `size` for clip methods): the schema's."""
        return settings.defaults(self.name)


METHODS: dict[str, Method] = {
    method.name: method
    for method in (
        Method(
            "lbptop",
            "clip",
            lambda clip, p: lbptop_features(clip, tuple(p["blocks"]), p["radius"], p["points"]),
            lambda p: lbptop_length(tuple(p["blocks"]), p["points"]),
            paper_row="LBP-TOP",
            summary="LBP on three orthogonal planes (Zhao & Pietikainen 2007)",
        ),
        Method(
            "lbpsip",
            "clip",
            lambda clip, p: lbpsip_features(clip, tuple(p["blocks"]), p["radius"]),
            lambda p: lbpsip_length(tuple(p["blocks"])),
            paper_row="LBP-SIP",
            summary="LBP with six intersection points (Wang et al. 2014)",
        ),
        Method(
            "hoof",
            "flow",
            lambda flow_uv, p: hoof_features(flow_uv, tuple(p["blocks"]), p["bins"]),
            lambda p: hoof_length(tuple(p["blocks"]), p["bins"]),
            paper_row="HOOF",
            summary="histograms of oriented optical flow (Chaudhry et al. 2009)",
        ),
        Method(
            "hoof_sequence",
            "clip",
            lambda clip, p: hoof_sequence_features(
                clip, tuple(p["blocks"]), p["bins"], p["segments"], p["flow_method"]
            ),
            lambda p: hoof_sequence_length(tuple(p["blocks"]), p["bins"], p["segments"]),
            # An option of the HOOF row, not a row of its own: `paper` runs `hoof`.
            summary="HOOF of the frame-to-frame flow per temporal segment (Chaudhry et al.'s "
            "per-frame form)",
        ),
        Method(
            "hog3d",
            "clip",
            lambda clip, p: hog3d_features(
                clip, tuple(p["blocks"]), p["segments"], p["bins_xy"], p["bins_t"]
            ),
            lambda p: hog3d_length(tuple(p["blocks"]), p["segments"], p["bins_xy"], p["bins_t"]),
            paper_row="HOG3D",
            summary="3D-gradient orientation histograms (Polikovsky et al. 2009)",
        ),
        Method(
            "fdm",
            "clip",
            # The clip is already at `size`: FDM's own resize is off (size None).
            lambda clip, p: fdm_features(
                clip, tuple(p["blocks"]), p["segments"], None, p["flow_method"]
            ),
            lambda p: fdm_length(tuple(p["blocks"]), p["segments"]),
            paper_row="FDM",
            summary="facial dynamics map: principal flow direction per cuboid (Xu et al. 2016)",
        ),
        Method(
            "adaptive_lbptop",
            "clip",
            # (n_bands, D) stored flat; the fold reshapes it and picks a band per fold.
            lambda clip, p: adaptive_features(
                clip,
                p["fps"],
                tuple(map(tuple, p["bands"])),
                p["alpha"],
                tuple(p["blocks"]),
                p["radius"],
                p["points"],
            ).reshape(-1),
            lambda p: len(p["bands"]) * lbptop_length(tuple(p["blocks"]), p["points"]),
            paper_row="Adaptive MM + LBP-TOP",
            summary="LBP-TOP of the clip magnified in the band chosen on training subjects "
            "(after Park et al. 2015)",
            fold=lambda features, labels, subjects, samples, classes, held_out, seed, p: (
                adaptive_svm_fold(
                    features.reshape(len(features), len(p["bands"]), -1),
                    labels,
                    subjects,
                    samples,
                    classes,
                    held_out,
                    seed,
                    p["C"],
                    p["selection"],
                    tuple(map(tuple, p["bands"])),
                    p["inner_folds"],
                )
            ),
            needs_fps=True,
        ),
    )
}


def method(name: str) -> Method:
    """The registered method of this name; a clear error listing the others."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method {name!r}; registered: {sorted(METHODS)}") from None


def paper_experiments() -> dict[str, str]:
    """Experiment name -> paper row, for every registered method with a row."""
    return {m.name: m.paper_row for m in METHODS.values() if m.paper_row}

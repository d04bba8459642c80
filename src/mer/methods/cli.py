"""`mer` verbs of the methods stage: the features of one clip for any registered descriptor
method (mer.methods.registry), and the LOSO linear SVM on them.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mer.arguments import SchemaDefault, class_list
from mer.methods import elrcn_cli

MARGIN = SchemaDefault("dataset.crop.margin")


def _read_input(source: str, inputs: str, size, onset, offset, crop_size, crop_margin):
    """The method's per-sample input: the onset..offset clip, or the onset->apex flow."""
    from mer.store import files

    if inputs == "flow":
        return files.load_npz(source, "flow_uv")["flow_uv"]
    from mer.data import clips

    if onset is None or offset is None:
        raise ValueError(f"{source}: a clip method needs the clip's onset and offset")
    clip = clips.load_clip(source, onset, offset)
    if crop_size:
        from mer.data import crop

        box, _ = crop.clip_box(clip[0], crop_margin, sample=source)
        clip = crop.crop_clip(clip, box, crop_size)
    return clips.resize_clip(clip, size)


def write_features(
    method_name,
    section,
    source,
    out,
    onset=None,
    offset=None,
    fps=None,
    crop_size=None,
    crop_margin=0.15,
) -> str:
    """One sample's features of a registered method -> out (.npy, float32); a summary line."""
    import numpy as np

    from mer.methods.registry import method
    from mer.store import files

    entry = method(method_name)
    params = {**entry.defaults, **section}
    if entry.needs_fps:
        if fps is None:
            raise ValueError(f"{method_name} needs the clip's fps ({source})")
        params["fps"] = fps
    data = _read_input(
        source, entry.inputs, params.get("size"), onset, offset, crop_size, crop_margin
    )
    start = time.perf_counter()
    features = entry.features(data, params)
    seconds = time.perf_counter() - start
    if features.shape != (entry.length(params),):
        raise AssertionError(f"{method_name}: {features.shape} is not ({entry.length(params)},)")
    # A handle, not a name: np.save would append .npy to the temporary name.
    with files.atomic_path(out) as tmp, open(tmp, "wb") as handle:
        np.save(handle, features.astype(np.float32))
    return (
        f"{source}: {entry.inputs} {data.shape} -> {features.size} {method_name} "
        f"values in {seconds:.3f} s -> {out}"
    )


def cmd_method_features(args) -> int:
    crop = dict(crop_size=args.crop_size, crop_margin=args.crop_margin)
    timing = dict(onset=args.onset, offset=args.offset, fps=args.fps)
    section = json.loads(args.params_json)
    print(write_features(args.method, section, args.source, args.out, **timing, **crop))
    return 0


def cmd_method_features_clips(args) -> int:
    """The workflow's job: one subject's samples, then the manifest (its declared output)."""
    from mer.store.files import write_manifest

    clip_rows = json.loads(args.clips_json)
    missing = [row.get("sample", row) for row in clip_rows if not {"sample", "source"} <= set(row)]
    if missing:
        raise ValueError(f"--clips-json: {missing} lack sample or source")
    crop = dict(crop_size=args.crop_size, crop_margin=args.crop_margin)
    section = json.loads(args.params_json)
    summaries = []
    for row in clip_rows:
        timing = {k: row.get(k) for k in ("onset", "offset", "fps")}
        out = f"{args.out_dir}/{row['sample']}.npy"
        summaries.append(write_features(args.method, section, row["source"], out, **timing, **crop))
        print(summaries[-1], flush=True)
    write_manifest(args.manifest, [row["sample"] for row in clip_rows], summaries)
    return 0


def cmd_svm_loso(args) -> int:
    import numpy as np

    from mer.data.frames import DataError
    from mer.data.samples import read_samples
    from mer.methods.registry import method
    from mer.methods.svm import svm_fold
    from mer.store import files

    samples = read_samples(args.samples_tsv)
    unknown = sorted(set(samples["label"]) - set(args.classes))
    if unknown:
        raise DataError(f"{args.samples_tsv}: labels {unknown} are not in --classes {args.classes}")
    features_dir = Path(args.features_dir)
    paths = [features_dir / f"{sample}.npy" for sample in samples["sample"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            f"{args.method} features missing: {missing[:5]}; delete the manifests "
            f"{features_dir}/subjects/<subject>.tsv of their subjects and rerun"
        )
    features = np.stack([np.load(p, allow_pickle=False) for p in paths])
    labels = samples["label"].map(args.classes.index).to_numpy()
    subjects = samples["subject"].to_numpy()
    out = Path(args.out_dir)
    entry = method(args.method)
    section = {**entry.defaults, **json.loads(args.params_json)}
    if args.C is not None:
        section["C"] = args.C
    for held_out in sorted(set(subjects)):
        fold_args = (features, labels, subjects, samples["sample"].to_numpy(), args.classes)
        if entry.fold is None:
            predictions, fold = svm_fold(
                *fold_args, held_out, args.seed, section["C"], method=args.method
            )
        else:  # e.g. adaptive_lbptop: chooses its band on the training subjects first
            predictions, fold = entry.fold(*fold_args, held_out, args.seed, section)
        for note in fold["notes"]:
            print(f"{held_out}: note: {note}")
        files.write_text_atomic(out / held_out / "fold.json", json.dumps(fold, indent=2))
        # Last: predictions.csv marks the fold as complete (as in `mer train`).
        with files.atomic_path(out / held_out / "predictions.csv") as tmp:
            predictions.to_csv(tmp, index=False)
        accuracy = (predictions.true_label == predictions.predicted_label).mean()
        print(f"test {held_out}: {len(predictions)} clips, accuracy {accuracy:.3f}")
    # The rule's declared output, written once every fold is: the folds it covers.
    files.write_text_atomic(out / "folds.json", json.dumps(sorted(set(subjects))))
    return 0


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser(
        "method-features",
        help="features of one sample for a registered descriptor method (lbptop, lbpsip, "
        "hoof, hog3d, ...)",
    )
    p.add_argument("method", help="a name of mer.methods.registry.METHODS")
    p.add_argument("source", help="clip methods: the frames folder; flow methods: flow .npz")
    p.add_argument("out", help=".npy file (float32 vector)")
    p.add_argument(
        "--params-json", default="{}", help="the method's config section (JSON); defaults fill in"
    )
    for name in ("onset", "offset"):
        p.add_argument(f"--{name}", type=int, default=None, help="frame number (clip methods)")
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument("--crop-margin", type=float, default=MARGIN, help="face box margin (fraction)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (methods that need it)")
    p.set_defaults(func=cmd_method_features)

    p = verbs.add_parser(
        "method-features-clips", help="`mer method-features` on many samples (one workflow job)"
    )
    p.add_argument("method", help="a name of mer.methods.registry.METHODS")
    p.add_argument("out_dir", help="writes <out_dir>/<sample>.npy")
    p.add_argument(
        "--clips-json",
        required=True,
        help="[{sample, source, onset, offset, fps}, ...]; source: frames folder or flow .npz",
    )
    p.add_argument("--manifest", required=True, help="written last: the samples done")
    p.add_argument("--params-json", default="{}", help="the method's config section (JSON)")
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument("--crop-margin", type=float, default=MARGIN, help="face box margin (fraction)")
    p.set_defaults(func=cmd_method_features_clips)

    p = verbs.add_parser("svm-loso", help="LOSO linear SVM on per-sample features, every fold")
    p.add_argument("out_dir", help="writes <out_dir>/<subject>/predictions.csv and fold.json")
    p.add_argument("--samples-tsv", required=True)
    p.add_argument("--features-dir", required=True, help="holds <sample>.npy per sample")
    p.add_argument("--classes", required=True, type=class_list)
    p.add_argument("--method", default="lbptop", help="the descriptor's name (fold.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--C", type=float, help="SVM regularisation (default: the method's section)")
    p.add_argument(
        "--params-json",
        default="{}",
        help="the method's config section (JSON), for a method with its own fold (adaptive_lbptop)",
    )
    p.set_defaults(func=cmd_svm_loso)

    elrcn_cli.register(verbs)  # ELRCN-TE's inputs and training fold

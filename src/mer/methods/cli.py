"""`mer` verbs of the methods stage: the features of one clip for any registered descriptor
method (mer.methods.registry), and the LOSO linear SVM on them.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mer.arguments import class_list
from mer.methods import elrcn_cli


def _read_input(args, inputs: str, size: int | None):
    """The method's per-sample input: the onset..offset clip, or the onset->apex flow."""
    from mer.store import files

    if inputs == "flow":
        return files.load_npz(args.source, "flow_uv")["flow_uv"]
    from mer.data import clips

    if args.onset is None or args.offset is None:
        raise ValueError("a clip method needs --onset and --offset")
    clip = clips.load_clip(args.source, args.onset, args.offset)
    if args.crop_size:
        from mer.data import crop

        box, _ = crop.clip_box(clip[0], args.crop_margin, sample=args.source)
        clip = crop.crop_clip(clip, box, args.crop_size)
    return clips.resize_clip(clip, size)


def cmd_method_features(args) -> int:
    import numpy as np

    from mer.methods.registry import method
    from mer.store import files

    entry = method(args.method)
    params = {**entry.defaults, **json.loads(args.params_json)}
    if entry.needs_fps:
        if args.fps is None:
            raise ValueError(f"{args.method} needs the clip's --fps")
        params["fps"] = args.fps
    source = _read_input(args, entry.inputs, params.get("size"))
    start = time.perf_counter()
    features = entry.features(source, params)
    seconds = time.perf_counter() - start
    if features.shape != (entry.length(params),):
        raise AssertionError(f"{args.method}: {features.shape} is not ({entry.length(params)},)")
    # A handle, not a name: np.save would append .npy to the temporary name.
    with files.atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
        np.save(handle, features.astype(np.float32))
    print(
        f"{args.source}: {entry.inputs} {source.shape} -> {features.size} {args.method} "
        f"values in {seconds:.3f} s -> {args.out}"
    )
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
        raise DataError(f"{args.method} features missing: {missing[:5]}; run mer method-features")
    features = np.stack([np.load(p, allow_pickle=False) for p in paths])
    labels = samples["label"].map(args.classes.index).to_numpy()
    subjects = samples["subject"].to_numpy()
    out = Path(args.out_dir)
    entry = method(args.method)
    section = {**entry.defaults, **json.loads(args.params_json), "C": args.C}
    for held_out in sorted(set(subjects)):
        fold_args = (features, labels, subjects, samples["sample"].to_numpy(), args.classes)
        if entry.fold is None:
            predictions, fold = svm_fold(
                *fold_args, held_out, args.seed, args.C, method=args.method
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
    p.add_argument("--crop-margin", type=float, default=0.15, help="face box margin (fraction)")
    p.add_argument("--fps", type=float, default=None, help="frame rate (methods that need it)")
    p.set_defaults(func=cmd_method_features)

    p = verbs.add_parser("svm-loso", help="LOSO linear SVM on per-sample features, every fold")
    p.add_argument("out_dir", help="writes <out_dir>/<subject>/predictions.csv and fold.json")
    p.add_argument("--samples-tsv", required=True)
    p.add_argument("--features-dir", required=True, help="holds <sample>.npy per sample")
    p.add_argument("--classes", required=True, type=class_list)
    p.add_argument("--method", default="lbptop", help="the descriptor's name (fold.json)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--C", type=float, default=1.0, help="SVM regularisation")
    p.add_argument(
        "--params-json",
        default="{}",
        help="the method's config section (JSON), for a method with its own fold (adaptive_lbptop)",
    )
    p.set_defaults(func=cmd_svm_loso)

    elrcn_cli.register(verbs)  # ELRCN-TE's inputs and training fold

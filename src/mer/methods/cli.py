"""`mer` verbs of the methods stage: LBP-TOP features of a clip and their LOSO
SVM.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from mer.arguments import class_list, optional_size


def cmd_lbptop_features(args) -> int:
    from mer.data import clips
    from mer.methods import lbptop
    from mer.store import files

    clip = clips.load_clip(args.frames_dir, args.onset, args.offset)
    if args.crop_size:
        from mer.data import crop

        box, _ = crop.clip_box(clip[0], args.crop_margin, sample=args.frames_dir)
        clip = crop.crop_clip(clip, box, args.crop_size)
    clip = clips.resize_clip(clip, args.size)
    start = time.perf_counter()
    features = lbptop.lbptop_features(clip, tuple(args.blocks), args.radius, args.points)
    seconds = time.perf_counter() - start
    # A handle, not a name: np.save would append .npy to the temporary name.
    with files.atomic_path(args.out) as tmp, open(tmp, "wb") as handle:
        np.save(handle, features)
    print(
        f"{args.frames_dir}: {clip.shape[0]} frames {clip.shape[1:]} -> {features.size} "
        f"LBP-TOP values in {seconds:.2f} s -> {args.out}"
    )
    return 0


def cmd_lbptop_loso(args) -> int:
    from mer.data.frames import DataError
    from mer.data.samples import read_samples
    from mer.methods import lbptop
    from mer.store import files

    samples = read_samples(args.samples_tsv)
    unknown = sorted(set(samples["label"]) - set(args.classes))
    if unknown:
        raise DataError(f"{args.samples_tsv}: labels {unknown} are not in --classes {args.classes}")
    features_dir = Path(args.features_dir)
    paths = [features_dir / f"{sample}.npy" for sample in samples["sample"]]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"LBP-TOP features missing: {missing[:5]}; run mer lbptop-features")
    features = np.stack([np.load(p, allow_pickle=False) for p in paths])
    labels = samples["label"].map(args.classes.index).to_numpy()
    subjects = samples["subject"].to_numpy()
    out = Path(args.out_dir)
    for held_out in sorted(set(subjects)):
        predictions, fold = lbptop.svm_fold(
            features,
            labels,
            subjects,
            samples["sample"].to_numpy(),
            args.classes,
            held_out,
            args.seed,
            args.C,
        )
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
    p = verbs.add_parser("lbptop-features", help="LBP-TOP features of one clip (onset..offset)")
    p.add_argument("frames_dir")
    p.add_argument("out", help=".npy file (float32 vector)")
    for name in ("onset", "offset"):
        p.add_argument(f"--{name}", type=int, required=True, help="frame number")
    p.add_argument(
        "--size", type=optional_size, default=None, help="working size (square); None: native"
    )
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument("--crop-margin", type=float, default=0.15, help="face box margin (fraction)")
    p.add_argument(
        "--blocks",
        type=int,
        nargs=2,
        default=[5, 5],
        metavar=("ROWS", "COLUMNS"),
        help="spatial grid of blocks over the frame",
    )
    p.add_argument("--radius", type=int, default=1)
    p.add_argument("--points", type=int, default=8)
    p.set_defaults(func=cmd_lbptop_features)

    p = verbs.add_parser("lbptop-loso", help="LOSO linear SVM on LBP-TOP features, every fold")
    p.add_argument("out_dir", help="writes <out_dir>/<subject>/predictions.csv and fold.json")
    p.add_argument("--samples-tsv", required=True)
    p.add_argument("--features-dir", required=True, help="holds <sample>.npy per sample")
    p.add_argument("--classes", required=True, type=class_list)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--C", type=float, default=1.0, help="SVM regularisation")
    p.set_defaults(func=cmd_lbptop_loso)

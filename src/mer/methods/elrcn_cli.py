"""`mer` verbs of ELRCN: the sequence inputs of one clip, one LOSO training fold.

Each verb reads files, calls mer.methods.elrcn(_inputs) and writes its outputs atomically;
heavy modules (torch) are imported inside the verb, so `mer --help` stays fast. The integrator
adds `register` to mer.methods.cli."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mer import compute
from mer.arguments import SchemaDefault, class_list


def cmd_elrcn_inputs(args) -> int:
    import cv2

    from mer.data import clips
    from mer.methods import elrcn_inputs
    from mer.store import files

    cv2.setNumThreads(args.threads)
    clip = clips.load_clip(args.frames_dir, args.onset, args.offset)
    if args.crop_size:
        from mer.data import crop

        box, _ = crop.clip_box(clip[0], args.crop_margin, sample=args.frames_dir)
        clip = crop.crop_clip(clip, box, args.crop_size)
    start = time.perf_counter()
    result = elrcn_inputs.sequence_inputs(
        clip, range(args.onset, args.offset + 1), args.steps, args.size, args.flow_method
    )
    seconds = time.perf_counter() - start
    files.save_npz(args.out, **result)
    print(
        f"{args.frames_dir}: {clip.shape[0]} frames {clip.shape[1:]} -> {args.steps} steps "
        f"{result['inputs'].shape[1:]} (frames {result['frame_numbers'].tolist()}) in "
        f"{seconds:.2f} s -> {args.out}"
    )
    return 0


def cmd_elrcn_train(args) -> int:
    compute.select(args.compute)  # before torch computes
    import torch

    from mer.data.frames import DataError
    from mer.data.samples import read_samples
    from mer.methods import elrcn
    from mer.store import files

    torch.set_num_threads(args.threads)  # the math's share: mer.compute
    settings = elrcn.ElrcnSettings.from_dict(json.loads(args.config_json))
    samples = read_samples(args.samples_tsv)
    unknown = sorted(set(samples["label"]) - set(args.classes))
    if unknown:
        raise DataError(f"{args.samples_tsv}: labels {unknown} are not in --classes {args.classes}")
    paths = {s: Path(args.inputs_dir) / f"{s}.npz" for s in samples["sample"]}
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        raise DataError(f"ELRCN inputs missing: {missing[:5]}; run mer elrcn-inputs")
    inputs = {s: files.load_npz(p, "inputs")["inputs"] for s, p in paths.items()}
    labels = dict(zip(samples["sample"], samples["label"], strict=True))
    subjects = dict(zip(samples["sample"], samples["subject"], strict=True))
    print(f"fold: held-out subject {args.held_out}, seed {args.seed}, {settings}", flush=True)
    start = time.perf_counter()
    predictions, history, fold = elrcn.train_elrcn_fold(
        inputs, labels, subjects, args.held_out, args.classes, args.seed, settings,
        log=lambda line: print(line, flush=True),
    )  # fmt: skip
    fold["seconds"] = time.perf_counter() - start
    out = Path(args.out_dir)
    for note in fold["notes"]:
        print(f"note: {note}")
    files.write_text_atomic(out / "fold.json", json.dumps(fold, indent=2))
    with files.atomic_path(out / "history.csv") as tmp:
        history.to_csv(tmp, index=False)
    # Last: predictions.csv marks the fold as complete (as in `mer train`).
    with files.atomic_path(out / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)
    accuracy = (predictions.true_label == predictions.predicted_label).mean()
    print(f"test {args.held_out}: {len(predictions)} clips, accuracy {accuracy:.3f}")
    return 0


def register(verbs) -> None:
    """Add ELRCN's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser("elrcn-inputs", help="ELRCN sequence inputs of one clip (.npz)")
    p.add_argument("frames_dir")
    p.add_argument("out", help=".npz with inputs (steps, 4, size, size) and frame_numbers")
    for name in ("onset", "offset"):
        p.add_argument(f"--{name}", type=int, required=True, help="frame number")
    p.add_argument(
        "--steps", type=int, default=SchemaDefault("elrcn.steps"), help="time steps, onset..offset"
    )
    p.add_argument(
        "--size", type=int, default=SchemaDefault("elrcn.size"), help="working size (square, px)"
    )
    p.add_argument("--flow-method", default=SchemaDefault("elrcn.flow_method"))
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument(
        "--crop-margin",
        type=float,
        default=SchemaDefault("dataset.crop.margin"),
        help="face box margin (fraction)",
    )
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_elrcn_inputs)

    p = verbs.add_parser("elrcn-train", help="one LOSO fold of ELRCN (CNN -> LSTM)")
    p.add_argument("out_dir", help="writes predictions.csv, history.csv and fold.json")
    p.add_argument("--held-out", required=True)
    p.add_argument("--samples-tsv", required=True)
    p.add_argument("--inputs-dir", required=True, help="holds <sample>.npz per sample")
    p.add_argument("--classes", required=True, type=class_list)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config-json", default="{}", help="ElrcnSettings overrides (JSON)")
    p.add_argument("--threads", type=int, default=1)
    compute.add_argument(p)
    p.set_defaults(func=cmd_elrcn_train)

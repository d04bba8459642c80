"""`mer` verbs of the preprocess stage: magnify a clip, onset->apex flow, masks and
previews.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json


def cmd_evm(args) -> int:
    import cv2
    import numpy as np

    from mer.data import clips
    from mer.preprocess import evm
    from mer.store import files

    cv2.setNumThreads(args.threads)  # one job per core: no oversubscription
    clip = clips.load_clip(args.frames_dir, args.onset, args.offset)
    try:
        frames, box, crop_warning = evm.onset_apex(
            clip,
            args.apex - args.onset,
            args.fps,
            size=args.size,
            crop_size=args.crop_size,
            crop_margin=args.crop_margin,
            sample=args.frames_dir,
            alpha=args.alpha,
            low_hz=args.low_hz,
            high_hz=args.high_hz,
            temporal_filter=args.filter,
            levels=args.levels,
            lambda_c=args.lambda_c,
            mode=args.mode,
        )
    except ValueError as error:  # e.g. a clip too short for the band: name the sample's frames
        raise ValueError(
            f"{args.frames_dir} (frames {args.onset}..{args.offset}): {error}"
        ) from error
    if box is not None:
        print(f"face box (x, y, w, h) {box}")
    files.save_npz(
        args.out,
        **frames,
        fps=np.float32(args.fps),
        crop_warning=np.str_(crop_warning),
    )
    print(f"{args.frames_dir}: {len(clip)} frames {frames['onset_gray'].shape} -> {args.out}")
    return 0


def cmd_flow(args) -> int:
    import cv2
    import numpy as np

    from mer.preprocess import flow
    from mer.store import files

    cv2.setNumThreads(args.threads)
    frames = files.load_npz(args.evm, "onset_magnified", "apex_magnified")
    method_params = json.loads(args.params_json)
    try:
        flow_uv = flow.onset_apex_flow(
            frames["onset_magnified"], frames["apex_magnified"], method=args.method, **method_params
        )
    except ValueError as error:  # name the sample: its EVM file is the input
        raise ValueError(f"{args.evm}: {error}; no flow written to {args.out}") from error
    files.save_npz(args.out, flow_uv=flow_uv)
    magnitude = np.sqrt((flow_uv**2).sum(-1))
    print(
        f"{args.evm}: flow {args.method}, mean |uv| {magnitude.mean():.3f} px, "
        f"max {magnitude.max():.3f} px -> {args.out}"
    )
    return 0


def cmd_masks(args) -> int:
    import cv2

    from mer.preprocess import evm, masks, preview
    from mer.store import files

    frames = files.load_npz(args.evm, "onset_gray", "apex_gray", "apex_magnified")
    flow_uv = files.load_npz(args.flow, "flow_uv")["flow_uv"]
    try:
        flow_bgr = masks.flow_image(flow_uv, normalise=args.normalise, scale_px=args.scale_px)
    except ValueError as error:  # e.g. a non-finite field: name the sample's flow file
        raise ValueError(f"{args.flow}: {error}") from error
    mask = masks.motion_mask(flow_bgr, threshold=args.threshold)
    masked = masks.masked_apex(frames["apex_gray"], mask)
    files.save_npz(
        args.out, flow_image=flow_bgr, mask=mask, apex_gray=frames["apex_gray"], masked_apex=masked
    )
    strip = preview.sample_strip(
        {
            "onset": frames["onset_gray"],
            "apex": frames["apex_gray"],
            "magnified apex": evm.to_uint8(frames["apex_magnified"]),
            "flow image": flow_bgr,
            "mask": mask,
            "masked apex": masked,
        },
        label=f"{args.label}  mask {mask.mean():.0%}",
    )
    with files.atomic_path(args.preview) as tmp:
        cv2.imwrite(str(tmp), strip)
    print(f"{args.flow}: mask covers {mask.mean():.1%} -> {args.out}")
    return 0


def cmd_contact_sheet(args) -> int:
    import cv2

    from mer.preprocess import preview
    from mer.store import files

    sheet = preview.contact_sheet(args.previews, columns=args.columns)
    with files.atomic_path(args.out) as tmp:
        cv2.imwrite(str(tmp), sheet)
    return 0


def cmd_motion_card(args) -> int:
    from mer.data import samples
    from mer.preprocess import card
    from mer.store import files

    table = samples.read_samples(args.samples)
    clips = card.card_table(table, args.masks_dir, workers=args.workers)
    summary = card.summarise(clips)
    with files.atomic_path(f"{args.out_dir}/clips.tsv") as tmp:
        clips.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    with files.atomic_path(f"{args.out_dir}/summary.tsv") as tmp:
        summary.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    figure = card.card_figure(clips, args.title)
    with files.atomic_path(f"{args.out_dir}/card.png") as tmp:
        figure.savefig(tmp, dpi=90, format="png")
    print(summary.drop(columns="meaning").to_string(index=False, float_format="%.3g"))
    return 0


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser("evm", help="magnify a clip (onset..offset); keep onset and apex")
    p.add_argument("frames_dir")
    p.add_argument("out")
    for name in ("onset", "apex", "offset"):
        p.add_argument(f"--{name}", type=int, required=True, help="frame number")
    p.add_argument("--fps", type=float, required=True)
    p.add_argument("--alpha", type=float, default=8.0)
    p.add_argument("--low-hz", type=float, required=True)
    p.add_argument("--high-hz", type=float, required=True)
    p.add_argument("--filter", default="ideal")
    p.add_argument("--levels", type=int, default=None)
    p.add_argument("--lambda-c", type=float, default=16.0)
    p.add_argument("--mode", default="magnify")
    p.add_argument("--size", type=int, default=None, help="working size (square), default native")
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument("--crop-margin", type=float, default=0.15, help="face box margin (fraction)")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_evm)

    p = verbs.add_parser("flow", help="dense optical flow onset -> apex of magnified frames")
    p.add_argument("evm")
    p.add_argument("out")
    p.add_argument("--method", required=True)
    p.add_argument("--params-json", default="{}", help="method parameters (JSON object)")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=cmd_flow)

    p = verbs.add_parser("masks", help="flow image, threshold mask, masked apex, preview")
    p.add_argument("evm")
    p.add_argument("flow")
    p.add_argument("out")
    p.add_argument("--preview", required=True)
    p.add_argument("--threshold", type=int, default=50)
    p.add_argument("--normalise", default="per_sample")
    p.add_argument("--scale-px", type=float, default=1.0)
    p.add_argument("--label", default="")
    p.set_defaults(func=cmd_masks)

    p = verbs.add_parser(
        "motion-card", help="per-clip motion, timing, size, noise and mask coverage, summarised"
    )
    p.add_argument("samples", help="samples.tsv")
    p.add_argument("out_dir", help="writes clips.tsv, summary.tsv and card.png here")
    p.add_argument("--masks-dir", default=None, help="the masks stage's <sample>.npz files")
    p.add_argument("--title", default="dataset")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=cmd_motion_card)

    p = verbs.add_parser("contact-sheet", help="tile per-sample previews into one image")
    p.add_argument("out")
    p.add_argument("previews", nargs="+")
    p.add_argument("--columns", type=int, default=2)
    p.set_defaults(func=cmd_contact_sheet)

"""`mer` verbs of the preprocess stage: magnify a clip, onset->apex flow, masks and
previews.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast. The workflow runs the
`-clips` verbs, one job per subject and stage (mer.preprocess.artifacts says why)."""

from __future__ import annotations

import json

from mer.arguments import SchemaDefault, class_list

MARGIN = SchemaDefault("dataset.crop.margin")


def _evm_options(args) -> dict:
    """The evm stage's parameters, as evm.onset_apex takes them (after the clip's timing)."""
    return dict(
        size=args.size,
        crop_size=args.crop_size,
        crop_margin=args.crop_margin,
        alpha=args.alpha,
        low_hz=args.low_hz,
        high_hz=args.high_hz,
        temporal_filter=args.filter,
        levels=args.levels,
        lambda_c=args.lambda_c,
        mode=args.mode,
    )


def cmd_evm(args) -> int:
    import cv2

    from mer.preprocess import artifacts

    cv2.setNumThreads(args.threads)  # one job per core: no oversubscription
    timing = dict(onset=args.onset, apex=args.apex, offset=args.offset, fps=args.fps)
    print(artifacts.evm_artifact(args.frames_dir, args.out, **timing, **_evm_options(args)))
    return 0


def cmd_flow(args) -> int:
    import cv2

    from mer.preprocess import artifacts

    cv2.setNumThreads(args.threads)
    method_params = json.loads(args.params_json)
    print(artifacts.flow_artifact(args.evm, args.out, args.method, method_params))
    return 0


def cmd_masks(args) -> int:
    from mer.preprocess import artifacts

    print(
        artifacts.masks_artifact(
            args.evm,
            args.flow,
            args.out,
            args.preview,
            threshold=args.threshold,
            normalise=args.normalise,
            scale_px=args.scale_px,
            label=args.label,
        )
    )
    return 0


EVM_CLIP_FIELDS = ("sample", "frames_dir", "onset", "apex", "offset", "fps")


def _clip_list(text: str) -> list[dict]:
    """--clips-json: a list of {sample, frames_dir, onset, apex, offset, fps} objects."""
    clip_rows = json.loads(text)
    if not isinstance(clip_rows, list):
        raise ValueError(f"--clips-json must be a JSON list, got {type(clip_rows).__name__}")
    for row in clip_rows:
        missing = [f for f in EVM_CLIP_FIELDS if f not in row]
        if missing:
            raise ValueError(f"--clips-json: clip {row.get('sample', row)} lacks {missing}")
    return clip_rows


def cmd_evm_clips(args) -> int:
    import cv2

    from mer.preprocess import artifacts
    from mer.store import files

    cv2.setNumThreads(args.threads)
    clip_rows = _clip_list(args.clips_json)
    summaries = []
    for row in clip_rows:
        timing = {k: row[k] for k in ("onset", "apex", "offset", "fps")}
        out = f"{args.out_dir}/{row['sample']}.npz"
        summaries.append(
            artifacts.evm_artifact(row["frames_dir"], out, **timing, **_evm_options(args))
        )
        print(summaries[-1], flush=True)
    files.write_manifest(args.manifest, [row["sample"] for row in clip_rows], summaries)
    return 0


def cmd_flow_clips(args) -> int:
    import cv2

    from mer.preprocess import artifacts
    from mer.store import files

    cv2.setNumThreads(args.threads)
    method_params = json.loads(args.params_json)
    summaries = []
    for sample in args.samples:
        evm_path, out = f"{args.evm_dir}/{sample}.npz", f"{args.out_dir}/{sample}.npz"
        summaries.append(artifacts.flow_artifact(evm_path, out, args.method, method_params))
        print(summaries[-1], flush=True)
    files.write_manifest(args.manifest, args.samples, summaries)
    return 0


def cmd_masks_clips(args) -> int:
    from mer.preprocess import artifacts
    from mer.store import files

    labels = json.loads(args.labels_json)  # sample -> its preview's caption
    summaries = []
    for sample, label in labels.items():
        summaries.append(
            artifacts.masks_artifact(
                f"{args.evm_dir}/{sample}.npz",
                f"{args.flow_dir}/{sample}.npz",
                f"{args.out_dir}/{sample}.npz",
                f"{args.out_dir}/preview/{sample}.png",
                threshold=args.threshold,
                normalise=args.normalise,
                scale_px=args.scale_px,
                label=label,
            )
        )
        print(summaries[-1], flush=True)
    files.write_manifest(args.manifest, list(labels), summaries)
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


def _add_evm_options(p) -> None:
    p.add_argument("--alpha", type=float, default=SchemaDefault("evm.alpha"))
    p.add_argument("--low-hz", type=float, required=True)
    p.add_argument("--high-hz", type=float, required=True)
    p.add_argument("--filter", default=SchemaDefault("evm.temporal_filter"))
    p.add_argument("--levels", type=int, default=None)
    p.add_argument("--lambda-c", type=float, default=SchemaDefault("evm.lambda_c"))
    p.add_argument("--mode", default=SchemaDefault("evm.mode"))
    p.add_argument("--size", type=int, default=None, help="working size (square), default native")
    p.add_argument("--crop-size", type=int, default=None, help="face crop to this size (px)")
    p.add_argument("--crop-margin", type=float, default=MARGIN, help="face box margin (fraction)")
    p.add_argument("--threads", type=int, default=1)


def _add_flow_options(p) -> None:
    p.add_argument("--method", required=True)
    p.add_argument("--params-json", default="{}", help="method parameters (JSON object)")
    p.add_argument("--threads", type=int, default=1)


def _add_masks_options(p) -> None:
    p.add_argument("--threshold", type=int, default=SchemaDefault("masks.threshold"))
    p.add_argument("--normalise", default=SchemaDefault("masks.normalise"))
    p.add_argument("--scale-px", type=float, default=SchemaDefault("masks.scale_px"))


def _register_one_clip(verbs) -> None:
    p = verbs.add_parser("evm", help="magnify a clip (onset..offset); keep onset and apex")
    p.add_argument("frames_dir")
    p.add_argument("out")
    for name in ("onset", "apex", "offset"):
        p.add_argument(f"--{name}", type=int, required=True, help="frame number")
    p.add_argument("--fps", type=float, required=True)
    _add_evm_options(p)
    p.set_defaults(func=cmd_evm)

    p = verbs.add_parser("flow", help="dense optical flow onset -> apex of magnified frames")
    p.add_argument("evm")
    p.add_argument("out")
    _add_flow_options(p)
    p.set_defaults(func=cmd_flow)

    p = verbs.add_parser("masks", help="flow image, threshold mask, masked apex, preview")
    p.add_argument("evm")
    p.add_argument("flow")
    p.add_argument("out")
    p.add_argument("--preview", required=True)
    _add_masks_options(p)
    p.add_argument("--label", default="")
    p.set_defaults(func=cmd_masks)


def _register_clips(verbs) -> None:
    """The workflow's per-subject jobs: one stage on many clips, <out_dir>/<sample>.npz each,
    then the --manifest file (the job's declared output)."""
    p = verbs.add_parser("evm-clips", help="`mer evm` on many clips in one process")
    p.add_argument("out_dir")
    p.add_argument(
        "--clips-json", required=True, help="[{sample, frames_dir, onset, apex, offset, fps}, ...]"
    )
    p.add_argument("--manifest", required=True, help="written last: the samples done")
    _add_evm_options(p)
    p.set_defaults(func=cmd_evm_clips)

    p = verbs.add_parser("flow-clips", help="`mer flow` on many samples' evm artifacts")
    p.add_argument("evm_dir", help="<sample>.npz of the evm stage")
    p.add_argument("out_dir")
    p.add_argument("--samples", type=class_list, required=True, help="comma-separated")
    p.add_argument("--manifest", required=True, help="written last: the samples done")
    _add_flow_options(p)
    p.set_defaults(func=cmd_flow_clips)

    p = verbs.add_parser("masks-clips", help="`mer masks` on many samples; previews in preview/")
    p.add_argument("evm_dir", help="<sample>.npz of the evm stage")
    p.add_argument("flow_dir", help="<sample>.npz of the flow stage")
    p.add_argument("out_dir")
    p.add_argument("--labels-json", required=True, help='{"<sample>": "<preview caption>", ...}')
    p.add_argument("--manifest", required=True, help="written last: the samples done")
    _add_masks_options(p)
    p.set_defaults(func=cmd_masks_clips)


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    _register_one_clip(verbs)
    _register_clips(verbs)

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

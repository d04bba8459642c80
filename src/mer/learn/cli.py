"""`mer` verbs of the learn stage: shards of a subject, one LOSO training fold,
prediction of a new clip.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from mer import compute
from mer.arguments import SchemaDefault, class_list


def cmd_shards(args) -> int:
    from mer.data import samples
    from mer.data.frames import DataError
    from mer.learn import augment, shards
    from mer.store import files

    table = samples.read_samples(args.samples_tsv)
    rows = table[table["subject"] == args.subject]
    if rows.empty:
        raise DataError(f"subject {args.subject!r} has no sample in {args.samples_tsv}")
    inputs, sample_variants = {}, []
    for sample in rows["sample"]:
        flow_path = Path(args.flow_dir, f"{sample}.npz")
        masks_path = Path(args.masks_dir, f"{sample}.npz")
        flow_uv = files.load_npz(flow_path, "flow_uv")["flow_uv"]
        apex_gray = files.load_npz(masks_path, "apex_gray")["apex_gray"]
        sample_variants.append(
            augment.variants(
                flow_uv,
                apex_gray,
                args.size,
                threshold=args.threshold,
                normalise=args.normalise,
                scale_px=args.scale_px,
            )
        )
        inputs.update({str(p): shards.sha256(p) for p in (flow_path, masks_path)})
    labels = [args.classes.index(label) for label in rows["label"]]
    shards.write_shard(
        args.out,
        args.subject,
        list(rows["sample"]),
        labels,
        sample_variants,
        args.classes,
        json.loads(args.params_json),
        inputs,
    )
    print(
        f"subject {args.subject}: {len(rows)} samples x {len(augment.AUGMENTATIONS)} "
        f"augmentations at {args.size}x{args.size} -> {args.out}"
    )
    return 0


def cmd_train(args) -> int:
    started = time.perf_counter()
    compute.select(args.compute)  # before torch is imported
    import torch

    from mer.learn import model, train
    from mer.settings import defaults
    from mer.store import files

    imported = time.perf_counter()

    # Keys not given take the schema's defaults, as in the workflow.
    config = train.TrainConfig.from_dict({**defaults("train"), **json.loads(args.config_json)})

    def log(line: str) -> None:
        print(line, flush=True)  # epoch lines show the progress in the rule's log

    log(f"fold: held-out subject {args.held_out}, seed {args.seed}, {config}")
    log(f"compute: {compute.mode()} mode (math threads {compute.math_threads(args.threads)})")
    out = Path(args.out_dir)
    # Undeclared in the rule, so Snakemake keeps it when it cleans up a killed job's outputs:
    # rerunning the job continues after the last finished epoch.
    resume_path = out / "resume.pt"
    # The most the fold adds to its disk at once: two resume.pt (weights, optimiser momenta and
    # best state: 3 models each) while a newer one replaces the last; checkpoint.pt (1 model)
    # is written beside one. A resume.pt left by a killed job is replaced, not added to.
    kept = resume_path.stat().st_size if resume_path.exists() else 0
    needed = 6 * model.state_bytes(config.streams, config.dense_units) - kept
    if warning := files.low_space_warning(out, needed):
        print(f"mer train: {warning}", file=sys.stderr, flush=True)
    # Another variant's checkpoint of this fold whose trunk (all but the head) is reused.
    trunk = files.load_checkpoint(args.trunk) if args.trunk else None
    result = train.train_fold(
        args.shards,
        args.held_out,
        config,
        args.seed,
        args.threads,
        log,
        resume_path,
        trunk,
        args.resume_every,
    )
    result.fold["trunk_from"] = args.trunk
    with files.atomic_path(out / "history.csv") as tmp:
        result.history.to_csv(tmp, index=False)
    with files.atomic_path(out / "checkpoint.pt") as tmp:
        torch.save(result.checkpoint, tmp)
    files.write_text_atomic(out / "fold.json", json.dumps(result.fold, indent=2))
    # Last: predictions.csv marks the fold as complete.
    with files.atomic_path(out / "predictions.csv") as tmp:
        result.predictions.to_csv(tmp, index=False)
    resume_path.unlink(missing_ok=True)  # the fold is complete
    correct = (result.predictions.true_label == result.predictions.predicted_label).mean()
    log(f"test {args.held_out}: {len(result.predictions)} clips, accuracy {correct:.3f}")
    # Where the fold's time went (benchmarks/bench_default_run.py sums these lines).
    phases = {"imports": imported - started, **result.seconds}
    phases["writing"] = time.perf_counter() - started - sum(phases.values())
    log("seconds: " + ", ".join(f"{name} {value:.1f}" for name, value in phases.items()))
    return 0


def cmd_predict(args) -> int:
    compute.select(args.compute)  # before torch is imported
    import cv2
    import torch

    from mer.learn import predict

    cv2.setNumThreads(args.threads)
    torch.set_num_threads(compute.math_threads(args.threads))
    checkpoint = predict.load_checkpoint(args.model)
    result = predict.predict_clip(
        args.clip_dir,
        checkpoint,
        args.fps,
        onset=args.onset,
        apex=args.apex,
        offset=args.offset,
        checkpoint_name=args.model,
    )
    for warning in result["warnings"]:
        print(f"mer predict: warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(dict(result, checkpoint=args.model, compute=compute.mode()), indent=2))
        return 0
    spotted = " (spotted)" if result["apex_spotted"] else ""
    print(
        f"{args.clip_dir}: frames {result['onset']}..{result['offset']}, apex "
        f"{result['apex']}{spotted}: predicted {result['predicted_label']}"
    )
    for name, probability in result["probabilities"].items():
        print(f"  {name:<12} {probability:.4f}")
    return 0


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser("shards", help="one subject's 10x augmented samples -> HDF5 shard")
    p.add_argument("out")
    p.add_argument("--subject", required=True)
    p.add_argument("--samples-tsv", required=True)
    p.add_argument("--flow-dir", required=True)
    p.add_argument("--masks-dir", required=True)
    p.add_argument("--size", type=int, required=True, help="network input size (px)")
    p.add_argument("--threshold", type=int, default=SchemaDefault("masks.threshold"))
    p.add_argument("--normalise", default=SchemaDefault("masks.normalise"))
    p.add_argument("--scale-px", type=float, default=SchemaDefault("masks.scale_px"))
    p.add_argument("--classes", required=True, type=class_list)
    p.add_argument("--params-json", default="{}", help="upstream parameters, for provenance")
    p.set_defaults(func=cmd_shards)

    p = verbs.add_parser("train", help="one LOSO fold: train without the held-out subject, test it")
    p.add_argument("out_dir")
    p.add_argument("--held-out", required=True, help="the test subject")
    p.add_argument("--shards", nargs="+", required=True, help="one shard per subject")
    p.add_argument(
        "--config-json",
        default="{}",
        help="training parameters (JSON object; keys left out: the schema's defaults)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument(
        "--resume-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="save the epoch loop for a resume after an epoch once this many seconds have "
        "passed since the last save (0: after every epoch; default 60)",
    )
    p.add_argument(
        "--trunk",
        help="checkpoint.pt of this fold from a variant that differs only in the over-sampler "
        "or head_epochs: its trained trunk is reused and only the head is refitted",
    )
    compute.add_argument(p)
    p.set_defaults(func=cmd_train)

    p = verbs.add_parser(
        "predict",
        help="class of a new clip, preprocessed as the checkpoint's training data",
        description="Runs the checkpoint's recorded preprocessing (EVM, flow, mask, input "
        "size) on the clip's frames onset..offset and prints the predicted class and the "
        "class probabilities. Refuses a checkpoint whose preprocessing cannot be reproduced.",
    )
    p.add_argument("clip_dir", help="folder of numbered gray or colour frames")
    p.add_argument("--model", required=True, help="a fold's checkpoint.pt")
    p.add_argument("--fps", type=float, required=True, help="frame rate of the clip")
    p.add_argument("--onset", type=int, default=None, help="frame number; default: first")
    p.add_argument("--apex", type=int, default=None, help="frame number; default: spotted")
    p.add_argument("--offset", type=int, default=None, help="frame number; default: last")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--threads", type=int, default=1)
    compute.add_argument(p)
    p.set_defaults(func=cmd_predict)

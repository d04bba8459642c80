"""Real dataset layouts through the whole preprocessing: CASME II (Cropped, no face crop) and
SAMM (uncropped, face crop on), built from a few synthetic clips under the official naming."""

import cv2
import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from mer.data import synth
from mer.store import files

pytestmark = pytest.mark.slow

PARAMS = synth.SynthParams(
    seed=4, subjects=2, clips_per_subject=2, frame_size=64, frame_size_jitter=0.0, aspect=1.0,
    frames_min=20, frames_max=26,
)  # fmt: skip
LABELS = {
    "casme2": {
        "others": "others",
        "disgust": "disgust",
        "happiness": "happiness",
        "repression": "repression",
        "surprise": "surprise",
    },
    "samm": {
        "others": "Other",
        "disgust": "Anger",
        "happiness": "Happiness",
        "repression": "Contempt",
        "surprise": "Surprise",
    },
}


def write_casme2(root):
    rows = []
    for plan in synth.plan_dataset(PARAMS):
        frames = synth.render_clip(plan, PARAMS)["frames"]
        subject = f"{plan.subject_index + 1:02d}"
        clip_dir = root / "Cropped" / f"sub{subject}" / f"EP0{plan.clip_index + 1}_01f"
        clip_dir.mkdir(parents=True)
        for i, frame in enumerate(frames):
            cv2.imwrite(
                str(clip_dir / f"reg_img{plan.first_frame + i}.jpg"),
                frame,
                [cv2.IMWRITE_JPEG_QUALITY, 98],
            )
        rows.append(
            {
                "Subject": subject,
                "Filename": clip_dir.name,
                "OnsetFrame": plan.onset,
                "ApexFrame": plan.apex,
                "OffsetFrame": plan.offset,
                "Action Units": "+".join(plan.action_units),
                "Estimated Emotion": LABELS["casme2"][plan.label],
            }
        )
    pd.DataFrame(rows).to_csv(root / "CASME2-coding.csv", index=False)
    return root / "Cropped", root / "CASME2-coding.csv"


def write_samm(root):
    """SAMM frames are uncropped and wider than tall: the face sits inside a larger frame."""
    rows = []
    for plan in synth.plan_dataset(PARAMS):
        frames = synth.render_clip(plan, PARAMS)["frames"]
        subject = f"{plan.subject_index + 6:03d}"
        clip_dir = root / subject / f"{subject}_{plan.clip_index + 1}_1"
        clip_dir.mkdir(parents=True)
        for i, frame in enumerate(frames):
            wide = cv2.copyMakeBorder(frame, 16, 16, 40, 40, cv2.BORDER_REPLICATE)
            cv2.imwrite(str(clip_dir / f"{subject}_{plan.first_frame + i:05d}.jpg"), wide)
        rows.append(
            {
                "Subject": subject,
                "Filename": clip_dir.name,
                "Inducement Code": 1,
                "Onset Frame": plan.onset,
                "Apex Frame": plan.apex,
                "Offset Frame": plan.offset,
                "Micro": "Micro",
                "Action Units": "+".join(plan.action_units),
                "Estimated Emotion": LABELS["samm"][plan.label],
            }
        )
    pd.DataFrame(rows).to_csv(root / "SAMM_codes.csv", index=False)
    return root, root / "SAMM_codes.csv"


@pytest.mark.parametrize(
    "name, writer, crop_size", [("casme2", write_casme2, None), ("samm", write_samm, 48)]
)
def test_real_layout_runs_through_preprocessing(workdir, tmp_path, name, writer, crop_size):
    root, annotations = writer(tmp_path / name)
    override = yaml.safe_load((REPO / "workflow" / "configs" / f"{name}.yaml").read_text())
    override["dataset"].update(root=str(root), annotations=str(annotations))
    if crop_size:
        override["dataset"]["crop"] = dict(override["dataset"].get("crop", {}), size=crop_size)
    (workdir / f"{name}.yaml").write_text(yaml.safe_dump(override))
    run_snakemake(
        workdir, "preprocess", "all_shards", "card", "--cores", "2", "--configfile", f"{name}.yaml"
    )
    table = pd.read_csv(workdir / f"results/{name}/samples.tsv", sep="\t")
    assert len(table) == len(synth.plan_dataset(PARAMS))
    mask_files = sorted(workdir.glob(f"results/{name}/masks/*/*.npz"))
    assert len(mask_files) == len(table)
    evm_file = next(workdir.glob(f"results/{name}/evm/*/*.npz"))
    apex = files.load_npz(evm_file, "apex_gray")["apex_gray"]
    assert apex.shape == ((crop_size, crop_size) if crop_size else (64, 64))
    masks = files.load_npz(mask_files[0], "mask", "masked_apex")
    assert (masks["masked_apex"][~masks["mask"]] == 0).all()
    # The motion card runs on real layouts too: one row per clip, its masks' coverage read.
    card = pd.read_csv(next(workdir.glob(f"results/{name}/card/*/clips.tsv")), sep="\t")
    assert sorted(card["sample"]) == sorted(table["sample"])
    assert card["mask_coverage"].between(0, 1).all()
    assert np.isfinite(
        files.load_npz(next(workdir.glob(f"results/{name}/flow/*/*.npz")), "flow_uv")["flow_uv"]
    ).all()

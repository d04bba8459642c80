"""Cost of decoding every onset..offset frame at the samples stage, as a ratio in one run.

    python benchmarks/bench_samples_check.py DATASET_DIR [--repeats 3]

DATASET_DIR holds annotations.csv and frames/<subject>/<video>/ (what `mer synth` writes).
Reference: the same samples stage without the image check (annotations + file listing only).
Prints the fastest of --repeats rounds of each, the frames decoded, and the ratio.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from unittest import mock

from mer.data import samples

CLASSES = ["others", "disgust", "happiness", "repression", "surprise"]


def load(dataset_dir: Path, check_images: bool) -> samples.LoadResult:
    build = samples.build_samples

    def build_with(*args, **kwargs):
        return build(*args, check_images=check_images, **kwargs)

    with mock.patch.object(samples, "build_samples", build_with):
        return samples.load_table(
            dataset_dir / "annotations.csv", dataset_dir / "frames", CLASSES, "bench"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dataset_dir", type=Path)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    best = {False: float("inf"), True: float("inf")}
    for _ in range(args.repeats):
        for check_images in best:
            start = time.perf_counter()
            result = load(args.dataset_dir, check_images)
            best[check_images] = min(best[check_images], time.perf_counter() - start)
    frames = int((result.samples.offset - result.samples.onset + 1).sum())
    print(
        f"{len(result.samples)} clips, {frames} frames decoded: with check {best[True]:.2f} s, "
        f"without {best[False]:.2f} s, ratio {best[True] / best[False]:.1f}x, "
        f"{1000 * (best[True] - best[False]) / frames:.2f} ms per frame"
    )


if __name__ == "__main__":
    main()

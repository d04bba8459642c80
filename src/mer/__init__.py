"""mer: MSCNN micro-expression recognition as a leak-free Snakemake workflow."""

from mer import compute

__version__ = "0.1.0"

# Before any stage loads OpenCV or torch: their CPU kernels follow the selected mode.
compute.cap_opencv()
compute.select()

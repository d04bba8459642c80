"""mer: MSCNN micro-expression recognition as a leak-free Snakemake workflow."""

__version__ = "0.1.0"

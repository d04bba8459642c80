# The dataset's motion card (mer.preprocess.card): per clip, its timing, frame size, raw
# onset->apex motion, noise and the default chain's mask coverage; summarised beside real
# CASME II's figures. Keyed by the masks stage it reads.


rule motion_card:
    input:
        samples=f"{DATA_DIR}/samples.tsv",
        masks=lambda wc: subject_manifests("masks", wc.mask_key),
    output:
        clips=f"{DATA_DIR}/card/{{mask_key}}/clips.tsv",
        summary=f"{DATA_DIR}/card/{{mask_key}}/summary.tsv",
        figure=report(
            f"{DATA_DIR}/card/{{mask_key}}/card.png",
            caption="../report/motion_card.rst",
            category="Data",
        ),
    params:
        masks_dir=lambda wc: f"{DATA_DIR}/masks/{wc.mask_key}",
        title=DATASET["name"],
    log:
        f"{LOGS}/motion_card/{{mask_key}}.log",
    # One thread: with two it waited until no fold was training, then ran alone at the end
    # of a run; with one it runs beside a fold (measured: beside the first two).
    threads: 1
    conda:
        ENV
    shell:
        "mer motion-card {input.samples} $(dirname {output.clips}) --masks-dir {params.masks_dir:q}"
        " --title {params.title:q} --workers {threads} > {log} 2>&1"


rule card:
    """Named target: the default chain's motion card (`snakemake card`)."""
    input:
        f"{DATA_DIR}/card/{DEFAULT_CHAIN['masks']}/card.png",

# Stages 8-9: pooled evaluation per experiment, the summary with the published numbers, the
# named targets (paper, alpha_sweep, ablation, beyond) and the report's figures.


wildcard_constraints:
    key=r"[^/]+",


rule evaluate:
    input:
        table=f"{DATA_DIR}/samples.tsv",  # the subjects every seed must have a fold of
        folds=lambda wc: experiment_inputs(wc.key),
    output:
        metrics=f"{DATA_DIR}/evaluation/{{key}}/metrics.json",
        per_class=f"{DATA_DIR}/evaluation/{{key}}/per_class.csv",
        per_subject=f"{DATA_DIR}/evaluation/{{key}}/per_subject.csv",
        confusion=f"{DATA_DIR}/evaluation/{{key}}/confusion.csv",
        confusion_normalised=f"{DATA_DIR}/evaluation/{{key}}/confusion_normalised.csv",
        confusion_png=report(
            f"{DATA_DIR}/evaluation/{{key}}/confusion.png",
            caption="../report/confusion.rst",
            category="Evaluation",
            subcategory="{key}",
        ),
        per_class_png=report(
            f"{DATA_DIR}/evaluation/{{key}}/per_class_f1.png",
            caption="../report/per_class_f1.rst",
            category="Evaluation",
            subcategory="{key}",
        ),
    params:
        out_dir=lambda wc, output: os.path.dirname(output.metrics),
        experiment=lambda wc: PLAN.experiment_name(wc.key),
        classes=",".join(DATASET["classes"]),
        seed_dirs=lambda wc: " ".join(f"{s}={seed_dir(wc.key, s)}" for s in SEEDS),
        subjects=lambda wc: ",".join(all_subjects()),
    log:
        f"{LOGS}/evaluate/{{key}}.log",
    conda:
        ENV
    shell:
        "mer evaluate {params.out_dir} --experiment {params.experiment} --classes {params.classes:q}"
        " --seed-dir {params.seed_dirs} --subjects {params.subjects:q}"
        " --samples-tsv {input.table} > {log} 2>&1"


rule summary:
    """The configured experiments (the method's comparison rows) beside the published numbers."""
    input:
        lambda wc: [f"{DATA_DIR}/evaluation/{key}/metrics.json" for key in EXPERIMENTS.values()],
    output:
        md=report(f"{DATA_DIR}/summary.md", caption="../report/summary.rst", category="Summary"),
        tsv=f"{DATA_DIR}/summary.tsv",
    params:
        metrics=" ".join(
            f"{name}={DATA_DIR}/evaluation/{key}/metrics.json" for name, key in EXPERIMENTS.items()
        ),
        dataset=DATASET["name"],
    log:
        f"{LOGS}/summary.log",
    conda:
        ENV
    shell:
        "mer summary {output.md} {output.tsv} --dataset {params.dataset}"
        " --metrics {params.metrics} > {log} 2>&1"


rule sweep_summary:
    """Summary of a named target's variants (alpha_sweep, ablation, beyond, paper)."""
    input:
        lambda wc: [f"{DATA_DIR}/evaluation/{k}/metrics.json" for k in SWEEPS[wc.target].values()],
    output:
        md=f"{DATA_DIR}/{{target}}/summary.md",
        tsv=f"{DATA_DIR}/{{target}}/summary.tsv",
    params:
        metrics=lambda wc: " ".join(
            f"{name}={DATA_DIR}/evaluation/{key}/metrics.json"
            for name, key in SWEEPS[wc.target].items()
        ),
        dataset=DATASET["name"],
        # The paper's rows beside their published numbers; the sweeps are the method's own.
        published=lambda wc: "" if wc.target == "paper" else "--no-published",
        beyond=lambda wc: "--beyond" if wc.target == "beyond" else "",
    log:
        f"{LOGS}/{{target}}_summary.log",
    wildcard_constraints:
        target="alpha_sweep|ablation|beyond|paper",
    conda:
        ENV
    shell:
        "mer summary {output.md} {output.tsv} --dataset {params.dataset}"
        " --metrics {params.metrics} {params.published} {params.beyond} > {log} 2>&1"


rule alpha_plot:
    input:
        [f"{DATA_DIR}/evaluation/{key}/metrics.json" for key in SWEEPS["alpha_sweep"].values()],
    output:
        png=report(
            f"{DATA_DIR}/alpha_sweep/alpha_sweep.png",
            caption="../report/alpha_sweep.rst",
            category="Alpha sweep",
        ),
        table=f"{DATA_DIR}/alpha_sweep/alpha_sweep.tsv",
    params:
        points=" ".join(
            f"{a:g}={DATA_DIR}/evaluation/{key}/metrics.json"
            for a, key in zip(config["sweeps"]["alpha"], SWEEPS["alpha_sweep"].values())
        ),
    log:
        f"{LOGS}/alpha_plot.log",
    conda:
        ENV
    shell:
        "mer plot-sweep {output.png} --parameter alpha --point {params.points}"
        " --out-tsv {output.table} > {log} 2>&1"


rule paper:
    """Named target: every comparison row of the method that runs on the configured dataset:
    the configured experiments (summary.md, as `all`) and every registered descriptor method
    beside them (paper/summary.md)."""
    input:
        f"{DATA_DIR}/summary.md",
        f"{DATA_DIR}/paper/summary.md",


rule alpha_sweep:
    """Named target: MSCNN at every alpha of `sweeps.alpha` (the method's alpha figure)."""
    input:
        f"{DATA_DIR}/alpha_sweep/summary.md",
        f"{DATA_DIR}/alpha_sweep/alpha_sweep.png",


rule ablation:
    """Named target: over-samplers, stream subsets, magnification vs the filter-only control."""
    input:
        f"{DATA_DIR}/ablation/summary.md",


rule beyond:
    """Named target: the variants of `sweeps.beyond` (late fusion, stream dropout, label
    smoothing, flow as u, v and optical strain, ...) beside the method's two rows."""
    input:
        f"{DATA_DIR}/beyond/summary.md",


rule training_curves:
    input:
        lambda wc: fold_outputs(wc.key, "history.csv"),
    output:
        report(
            f"{DATA_DIR}/evaluation/{{key}}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            subcategory="{key}",
        ),
    params:
        fold_dirs=lambda wc, input: " ".join(os.path.dirname(f) for f in input),
        title=lambda wc: PLAN.experiment_name(wc.key),
    log:
        f"{LOGS}/training_curves/{{key}}.log",
    conda:
        ENV
    shell:
        "mer plot-history {output} {params.fold_dirs} --title {params.title} > {log} 2>&1"

"""`mer` verbs of the evaluation stage: score an experiment's folds, the summary,
training curves, sweep plots, the comparison of two results folders.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

from mer.arguments import class_list, name_path


def cmd_plot_history(args) -> int:
    from mer.evaluation import figures

    figures.plot_training_curves(args.fold_dirs, args.out_png, args.title)
    return 0


def cmd_evaluate(args) -> int:
    from mer.evaluation import evaluate

    seed_dirs = {}
    for seed, seed_dir in args.seed_dir:
        if not seed.isdigit():
            raise ValueError(f"--seed-dir {seed}={seed_dir}: the seed must be an integer")
        seed_dirs[int(seed)] = seed_dir
    databases = None
    if args.samples_tsv:
        from mer.data.samples import read_samples

        table = read_samples(args.samples_tsv)
        databases = dict(zip(table["sample"], table["dataset"].astype(str), strict=True))
    metrics = evaluate.evaluate_experiment(
        seed_dirs,
        args.classes,
        args.out_dir,
        args.experiment,
        subjects=args.subjects,
        databases=databases,
    )
    pooled = metrics["pooled"]["across_seeds"]
    print(
        f"{args.experiment}: {metrics['n_samples']} samples, {metrics['n_folds']} folds, "
        f"{metrics['n_seeds']} seed(s); pooled accuracy {pooled['accuracy']['mean']:.4f}, "
        f"UF1 {pooled['macro_f1']['mean']:.4f}, UAR {pooled['uar']['mean']:.4f} -> {args.out_dir}"
    )
    return 0


def cmd_summary(args) -> int:
    from mer.evaluation import summary

    metrics_paths = dict(args.metrics)
    if len(metrics_paths) != len(args.metrics):
        raise ValueError("--metrics: each experiment name may appear once")
    table = summary.write_summary(
        metrics_paths,
        args.dataset,
        args.out_md,
        args.out_tsv,
        published=not args.no_published,
        beyond=args.beyond,
    )
    print(table.to_string(index=False))
    return 0


def cmd_plot_sweep(args) -> int:
    from mer.evaluation import figures, summary
    from mer.store import files

    points = {float(value): summary.read_metrics(path) for value, path in args.point}
    figures.plot_sweep(points, args.out_png, parameter=args.parameter)
    table = summary.sweep_table(points, args.parameter)
    if args.out_tsv:
        with files.atomic_path(args.out_tsv) as tmp:
            table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    print(table.to_string(index=False))
    return 0


def cmd_compare_results(args) -> int:
    from mer.evaluation import provenance

    report = provenance.compare_results(args.first, args.second)
    print("\n".join(provenance.comparison_lines(report, args.first, args.second)))
    one_sided = report["only_first"] or report["only_second"]
    same = report["compared"] and not (report["differing"] or report["fingerprint_differs"])
    same = same and not one_sided
    return 0 if same else 1


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser("plot-history", help="training curves of the folds of an experiment")
    p.add_argument("out_png")
    p.add_argument("fold_dirs", nargs="+")
    p.add_argument("--title", default="")
    p.set_defaults(func=cmd_plot_history)

    p = verbs.add_parser(
        "evaluate",
        help="score an experiment's LOSO predictions: pooled metrics, per subject, plots",
    )
    p.add_argument("out_dir")
    p.add_argument("--experiment", required=True, help="experiment name, written to metrics.json")
    p.add_argument("--classes", required=True, type=class_list, help="comma-separated, in order")
    p.add_argument(
        "--seed-dir",
        required=True,
        nargs="+",
        action="extend",
        type=name_path,
        metavar="SEED=DIR",
        help="each seed's folder of <subject>/predictions.csv folds",
    )
    p.add_argument(
        "--subjects",
        type=class_list,
        default=None,
        help="comma-separated held-out subjects expected in every seed folder "
        "(a missing fold is an error); default: every sub-folder",
    )
    p.add_argument(
        "--samples-tsv",
        default=None,
        help="samples.tsv: its dataset column gives per-database scores when it holds several",
    )
    p.set_defaults(func=cmd_evaluate)

    p = verbs.add_parser("summary", help="experiments' metrics.json -> summary.md and .tsv")
    p.add_argument("out_md")
    p.add_argument("out_tsv")
    p.add_argument("--dataset", required=True, help="dataset name (synthetic, casme2, samm)")
    p.add_argument(
        "--metrics",
        required=True,
        nargs="+",
        action="extend",
        type=name_path,
        metavar="NAME=metrics.json",
        help="each experiment's metrics.json, in table order",
    )
    p.add_argument(
        "--no-published",
        action="store_true",
        help="leave out the published numbers (e.g. an ablation's own summary)",
    )
    p.add_argument(
        "--beyond",
        action="store_true",
        help="add each variant's verdicts against mscnn and evm_flow and the recommending "
        "rule's choice (`snakemake beyond`)",
    )
    p.set_defaults(func=cmd_summary)

    p = verbs.add_parser("plot-sweep", help="pooled UF1 and accuracy against a parameter")
    p.add_argument("out_png")
    p.add_argument("--parameter", default="alpha", help="x-axis name")
    p.add_argument(
        "--point",
        required=True,
        nargs="+",
        action="extend",
        type=name_path,
        metavar="VALUE=metrics.json",
        help="each parameter value's metrics.json",
    )
    p.add_argument("--out-tsv", default=None, help="also write the plotted values as a table")
    p.set_defaults(func=cmd_plot_sweep)

    p = verbs.add_parser(
        "compare-results",
        help="two results folders fold by fold: same predictions? same compute fingerprint?",
        description="Pairs the folds' predictions.csv and history.csv (less its seconds) of two "
        "results folders (e.g. results/synthetic of two machines) by experiment, seed and "
        "subject, compares their content and the fingerprint fields that decide the bits; "
        "exit 0 only if every fold is in both and all agree.",
    )
    p.add_argument("first")
    p.add_argument("second")
    p.set_defaults(func=cmd_compare_results)

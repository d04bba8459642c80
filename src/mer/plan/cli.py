"""`mer` verb of the plan: what a config asks the workflow for, by stage and key.

Heavy modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json


def cmd_plan(args) -> int:
    import yaml
    from snakemake.utils import update_config, validate

    from mer.plan.runs import build_plan
    from mer.settings import SCHEMA

    config = {}
    for path in args.configfile:  # later files override earlier ones, as Snakemake merges them
        with open(path) as config_file:
            update_config(config, yaml.safe_load(config_file) or {})
    try:
        validate(config, str(SCHEMA))  # fills in the schema's defaults, as the Snakefile does
    except Exception as error:  # Snakemake's WorkflowError: name the files
        raise ValueError(f"{', '.join(args.configfile)}: {error}") from error
    plan = build_plan(config)
    shown = {"experiments": plan.experiments, "sweeps": plan.sweeps, "keys": plan.keys()}
    print(json.dumps(shown, indent=2))
    return 0


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser(
        "plan",
        help="print the experiments, sweeps and artifact keys a config asks for (JSON)",
    )
    p.add_argument(
        "configfile", nargs="*", default=["config.yaml"],
        help="config files, later ones overriding earlier sections (default: config.yaml)",
    )  # fmt: skip
    p.set_defaults(func=cmd_plan)

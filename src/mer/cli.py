"""`mer` command line: one verb per stage, each registered by its stage's `cli` module.

mer <verb> --help        what a verb reads, computes and writes
"""

from __future__ import annotations

import argparse
import sys

from mer.arguments import SchemaDefault
from mer.data import cli as data_cli
from mer.evaluation import cli as evaluation_cli
from mer.learn import cli as learn_cli
from mer.methods import cli as methods_cli
from mer.plan import cli as plan_cli
from mer.preprocess import cli as preprocess_cli
from mer.store import cli as store_cli

# In the data's order, so `mer --help` lists the verbs as the pipeline runs them.
STAGE_CLIS = (
    data_cli, preprocess_cli, learn_cli, methods_cli, evaluation_cli, plan_cli, store_cli
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mer", description=__doc__.splitlines()[0])
    verbs = parser.add_subparsers(dest="verb", required=True)
    for stage_cli in STAGE_CLIS:
        stage_cli.register(verbs)
    return parser


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The verb's arguments, options left out taking the config schema's defaults."""
    args = build_parser().parse_args(argv)
    for name, value in vars(args).items():
        if isinstance(value, SchemaDefault):
            from mer.settings import default  # YAML: only once a default is needed

            setattr(args, name, default(value.path))
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # After parsing: `mer <verb> --help` exits above without loading numpy and OpenCV.
    from mer.data.frames import DataError

    try:
        return args.func(args)
    except (DataError, ValueError) as error:  # bad input: a message, not a traceback
        print(f"mer {args.verb}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

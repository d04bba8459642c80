"""`mer` verbs of the store stage: list or delete stale
parameter keys, list unreadable artifacts.

Each verb reads files, calls the stage's functions and writes its outputs atomically; heavy
modules are imported inside the verb, so `mer --help` stays fast."""

from __future__ import annotations

import json


def cmd_clean_cache(args) -> int:
    from mer.store import cache

    current = json.loads(args.current_json)
    stale = cache.stale_entries(args.data_dir, current)
    sizes = [cache.size_bytes(entry) for entry in stale]
    if args.delete:
        cache.remove(stale)
    print(cache.describe(stale, sizes, args.delete))
    return 0


def cmd_check_results(args) -> int:
    from pathlib import Path

    from mer.store import check

    if not Path(args.results_dir).is_dir():
        raise ValueError(f"{args.results_dir} is no folder (vanished, or never written?)")
    n_read, found = check.findings(args.results_dir)
    print(check.describe(n_read, found))
    return 1 if found else 0


def register(verbs) -> None:
    """Add this stage's verbs to the `mer` command's subparsers."""
    p = verbs.add_parser(
        "clean-cache", help="list (or --delete) artifacts of parameter sets not in the config"
    )
    p.add_argument("data_dir", help="results/<dataset name>")
    p.add_argument(
        "--current-json", required=True, help='current keys per stage: {"evm": [KEY, ...], ...}'
    )
    p.add_argument("--delete", action="store_true", help="remove them (default: only list)")
    p.set_defaults(func=cmd_clean_cache)

    p = verbs.add_parser(
        "check-results",
        help="read every artifact of a results folder whole; list the unreadable ones and the "
        "command that redoes each (exit status 1 if any)",
    )
    p.add_argument("results_dir", help="results/<dataset name>, or any folder below it")
    p.set_defaults(func=cmd_check_results)

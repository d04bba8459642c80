"""The docs agree with the code: every config key is documented, every output is described,
every relative link resolves. Reads files only (no Snakemake run)."""

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
CONFIGURATION = REPO / "docs" / "configuration.md"
OUTPUTS = REPO / "docs" / "outputs.md"
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))

# Keys whose children need no row of their own: `experiments` and the `sweeps` variants are
# maps of user-chosen names (their values are per-section overrides of the keys documented
# anyway); `dataset.sources.<database>` repeats the dataset keys once per database.
CHILDREN_EXEMPT = {"experiments", "sweeps.beyond", "sweeps.ablation", "dataset.sources"}

# What a default `snakemake --cores all` writes at the top of results/synthetic/ (listed from a
# finished default run). The rules' output paths below must produce at least these, so that a
# change in the rules that drops one of them is noticed here too.
DEFAULT_RUN_TOP_LEVEL = {
    "baseline", "card", "dataset", "evaluation", "evm", "features", "flow", "logs", "masks",
    "preview", "shards", "train", "samples.tsv", "samples_report.md", "summary.md",
    "summary.tsv", "report.html",
}  # fmt: skip
# `dataset/` is the synthetic generator's folder, written by mer synth under a path the rules
# build from a variable (not a literal `{DATA_DIR}/dataset/...`).
NOT_LITERAL_IN_RULES = {"dataset"}


def schema_keys(properties: dict, prefix: str = "") -> list[str]:
    """Dotted keys of the schema: each section's keys and, below them, every nested key."""
    keys = []
    for name, spec in properties.items():
        key = f"{prefix}{name}"
        keys.append(key)
        if key not in CHILDREN_EXEMPT and isinstance(spec, dict) and "properties" in spec:
            keys += schema_keys(spec["properties"], f"{key}.")
    return keys


def test_schema_walk_finds_nested_keys():
    keys = schema_keys(yaml.safe_load(SCHEMA.read_text())["properties"])
    assert {"evm.alpha", "dataset.crop.margin", "sweeps.alpha", "train.fusion"} <= set(keys)
    assert not any(k.startswith(("experiments.", "dataset.sources.")) for k in keys)


def test_every_schema_key_has_a_row_in_docs_configuration():
    keys = schema_keys(yaml.safe_load(SCHEMA.read_text())["properties"])
    named = set(re.findall(r"`([\w.]+)`", CONFIGURATION.read_text()))
    missing = [key for key in keys if key not in named]
    assert not missing, f"docs/configuration.md names no `{missing[0]}` (all: {missing})"


def rule_output_names() -> tuple[set[str], set[str]]:
    """(top-level names under results/<name>/, file names) of the rules' literal paths."""
    tops, files = set(), set()
    for rule_file in RULES:
        for path in re.findall(r"\{(?:DATA_DIR|LOGS)\}/[^\"'\s]*", rule_file.read_text()):
            parts = path.split("/")[1:]
            if path.startswith("{LOGS}"):
                parts = ["logs"]
            if parts and re.fullmatch(r"[\w.]+", parts[0]):
                tops.add(parts[0])
            if re.fullmatch(r"\w+\.\w+", parts[-1]):
                files.add(parts[-1])
    return tops, files


def test_rules_write_what_a_default_run_holds():
    tops, files = rule_output_names()
    assert DEFAULT_RUN_TOP_LEVEL - NOT_LITERAL_IN_RULES <= tops
    assert {"paper", "ablation", "alpha_sweep", "beyond", "elrcn", "elrcn_inputs"} <= tops
    assert {"checkpoint.pt", "folds.json", "metrics.json"} <= files


@pytest.mark.parametrize("kind", ["folder or top-level file", "file name"])
def test_every_output_of_the_rules_is_described_in_docs_outputs(kind):
    tops, files = rule_output_names()
    text = OUTPUTS.read_text()
    if kind == "file name":
        missing = sorted(f for f in files if not re.search(rf"(?<![\w.]){re.escape(f)}", text))
    else:
        wanted = tops | DEFAULT_RUN_TOP_LEVEL
        missing = sorted(t for t in wanted if not re.search(rf"(?<![\w.]){re.escape(t)}\b", text))
    assert not missing, f"docs/outputs.md does not describe {missing}"


MARKDOWN = sorted((REPO / "docs").glob("*.md")) + [REPO / "README.md"]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def broken_links(page: Path) -> list[str]:
    """Relative link targets of a Markdown page that name no existing file (anchors ignored)."""
    broken = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue  # a web address or an anchor on the same page
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_to_existing_files(page):
    broken = broken_links(page)
    assert not broken, f"{page.name} links to missing files: {broken}"


def test_the_link_check_sees_a_broken_link(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[ok](page.md) [web](https://example.org) [top](#a) [gone](absent.md#part)\n")
    assert broken_links(page) == ["absent.md#part"]


def heading_anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as '-'."""
    anchors, in_code = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#+ (.+)", line)):
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", MARKDOWN, ids=lambda p: p.relative_to(REPO).as_posix())
def test_anchors_into_markdown_pages_name_a_heading(page):
    missing = []
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or "#" not in target:
            continue
        path, anchor = target.split("#", 1)
        linked = page.parent / path if path else page
        if linked.suffix == ".md" and linked.exists() and anchor not in heading_anchors(linked):
            missing.append(target)
    assert not missing, f"{page.name} links to headings that do not exist: {missing}"


def test_heading_anchors_follow_github(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Interruptions, determinism and disk\n```\n# not a heading\n```\n")
    page.write_text(page.read_text() + "## `snakemake --sdm conda` fails\n")
    assert heading_anchors(page) == {
        "interruptions-determinism-and-disk",
        "snakemake---sdm-conda-fails",
    }

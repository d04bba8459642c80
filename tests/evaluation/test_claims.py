"""The claims section of the summary: a verdict per claim from two experiments' UF1."""

import pytest

from mer.evaluation import claims
from mer.evaluation.summary import summary


def uf1(mean, std):
    return {"mean": mean, "std": std}


@pytest.mark.parametrize(
    "better, worse, expected",
    [
        (uf1(0.60, 0.02), uf1(0.50, 0.03), "holds"),
        (uf1(0.50, 0.02), uf1(0.60, 0.03), "reversed"),
        (uf1(0.60, 0.05), uf1(0.55, 0.05), "within seed spread"),
        (uf1(0.60, None), uf1(0.50, None), "holds (1 seed, no spread)"),
    ],
)
def test_verdict_weighs_the_difference_against_the_seed_spread(better, worse, expected):
    assert claims.verdict(better, worse) == expected


def metrics(mean, std, seeds=3):
    headline = {
        name: {"mean": mean, "std": std} for name in ("accuracy", "macro_f1", "uar", "weighted_f1")
    }
    return {
        "pooled": {"across_seeds": headline},
        "mean_over_subjects": {"across_seeds": headline},
        "n_seeds": seeds,
        "n_folds": 8,
        "n_samples": 59,
    }


def test_only_claims_with_both_runs_present_are_listed_under_their_names():
    section = "\n".join(
        claims.claims_markdown(
            {"mscnn": metrics(0.6, 0.01), "no_magnification": metrics(0.7, 0.01)}
        )
    )
    assert "| EVM magnification (alpha 8) helps | mscnn 0.600 ± 0.010 | no_magnification" in section
    assert "reversed" in section
    assert "LBP-TOP" not in section and "flow stream" not in section


def test_the_summary_carries_the_claims_and_omits_them_when_none_apply():
    _, with_claims = summary(
        {"mscnn": metrics(0.6, 0.01), "lbptop": metrics(0.3, 0.0)}, "synthetic", published=False
    )
    assert "## The method's claims" in with_claims and "| MSCNN beats LBP-TOP |" in with_claims
    _, without = summary({"mscnn": metrics(0.6, 0.01)}, "synthetic", published=False)
    assert "claims" not in without

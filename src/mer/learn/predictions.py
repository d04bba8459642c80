"""The per-fold predictions table that every method writes (MSCNN, the SVM methods, ELRCN-TE)
and mer.evaluation reads: sample, subject, true_label, predicted_label, then p_<class> per
class in class order."""

from __future__ import annotations

import numpy as np
import pandas as pd


def predictions_table(
    samples,
    subjects,
    labels,
    predicted: np.ndarray,
    probabilities: np.ndarray,
    classes: list[str],
) -> pd.DataFrame:
    """The held-out clips' rows: labels and predicted are class indices."""
    predictions = pd.DataFrame(
        {
            "sample": samples,
            "subject": subjects,
            "true_label": [classes[i] for i in labels],
            "predicted_label": [classes[i] for i in predicted],
        }
    )
    for index, name in enumerate(classes):
        predictions[f"p_{name}"] = probabilities[:, index]
    return predictions

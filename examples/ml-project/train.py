"""Train a tiny model and upload it to S3.

A demo project for mlsec-actions: it carries deliberate mistakes for the pipeline to find.
The AWS keys below are fakes in the shape of AWS's documentation examples, never valid credentials
(the key id is not the documented AKIA...EXAMPLE one because scanners rightly ignore that).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

# Deliberate mistake: credentials committed in the source (code-scan reports it as a secret).
AWS_ACCESS_KEY_ID = "AKIA4MLSECFAKEKEY7QZ"
AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

BUCKET = os.environ.get("MODEL_BUCKET", "ml-project-models")


def train(samples: list[tuple[float, float]]) -> dict[str, float]:
    """Least squares fit of y = a * x + b."""
    n = len(samples)
    mean_x = sum(x for x, _ in samples) / n
    mean_y = sum(y for _, y in samples) / n
    var_x = sum((x - mean_x) ** 2 for x, _ in samples)
    cov = sum((x - mean_x) * (y - mean_y) for x, y in samples)
    a = cov / var_x
    return {"a": a, "b": mean_y - a * mean_x}


def main() -> None:
    model = train([(float(x), 2.0 * x + 1.0) for x in range(10)])
    out = Path("model.pkl")
    # Pickle is what model-scan looks at later in the pipeline.
    out.write_bytes(pickle.dumps(model))
    print(f"trained {model}; would upload {out} to s3://{BUCKET}/")


if __name__ == "__main__":
    main()

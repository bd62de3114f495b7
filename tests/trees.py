"""Factories for small source trees the tests scan (function-scoped: each test gets its own)."""

from __future__ import annotations

import os
from pathlib import Path

# AWS's documented example key shapes: not real credentials, but detected by secret scanners.
FAKE_AWS_KEY_ID = "AKIAIOSFODNN7" + "EXAMPLF"
FAKE_AWS_SECRET = "".join(("wJalrXUtnFEMI", "/K7MDENG/bPxRfiCY", "EXAMPLEKEZ"))  # joined: no scanner sees it here


def leaky_project(root: Path) -> Path:
    """A tree with one committed secret, a root Dockerfile and a public S3 bucket."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.py").write_text(
        "import boto3\n\n"
        f'AWS_ACCESS_KEY_ID = "{FAKE_AWS_KEY_ID}"\n'
        "def main():\n    return boto3.client('s3')\n",
        encoding="utf-8",
    )
    (root / "Dockerfile").write_text('FROM python:3.11\nRUN pip install flask\nCMD ["python", "app.py"]\n')
    (root / "infra").mkdir(exist_ok=True)
    (root / "infra" / "main.tf").write_text(
        'resource "aws_s3_bucket" "data" {\n  bucket = "training-data"\n  acl    = "public-read"\n}\n')
    return root


def clean_project(root: Path) -> Path:
    """A tree with nothing for trivy's secret and misconfig scanners to find."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "app.py").write_text("def add(a: int, b: int) -> int:\n    return a + b\n", encoding="utf-8")
    return root


def nesting_depth(value: object) -> int:
    """How deeply lists and dicts nest in `value` (0 for a scalar), without recursion."""
    stack, deepest = [(value, 0)], 0
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list):
            deepest = max(deepest, d + 1)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return deepest


def deep_file(root: Path, levels: int, name: str, data: bytes) -> str:
    """`levels` nested `d` folders under `root` with the file `name` holding `data` at the bottom; returns its
    relative path. Made one level at a time through folder descriptors: os.makedirs recurses per level."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
        try:
            os.write(out, data)
        finally:
            os.close(out)
    finally:
        os.close(fd)
    return "/".join(["d"] * levels + [name])

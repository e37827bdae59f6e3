"""The image recipes (Dockerfile, Dockerfile.notebook), checked without a container engine:
parsed with dockerfile-parse, each must be multi-stage, pin its base images, run as a non-root
user, install exactly what requirements.lock pins, and never download-and-run anything."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parents[2]
IMAGES = sorted(p for p in ROOT.glob("Dockerfile*") if p.is_file())
#: a tag naming a patch release (3.11.14-slim-bookworm, 8.0.4) or a digest
PINNED = re.compile(r"^[^:@\s]+(:[\w.-]*\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
DOWNLOAD = re.compile(r"\b(curl|wget)\b|\bhttps?://|\|\s*(ba)?sh\b")
PIP_INSTALL = re.compile(r"\bpip\s+install\s+([^&;|]*)")


def unpinned_installs(run: str) -> list[str]:
    """Packages a RUN line installs without a pinned version (the project itself, ``--no-deps
    .``, is built from the context: its dependencies come from the lock)."""
    loose = []
    for args in PIP_INSTALL.findall(run):
        words = [w.strip("\"'") for w in args.split() if w != "\\"]
        if "--no-deps" in words and words[-1] == ".":
            continue
        options_with_value = {"--python", "-r", "--requirement", "-c", "--constraint"}
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in options_with_value:
                skip = True
            elif not word.startswith("-") and "==" not in word:
                loose.append(word)
    return loose


def problems(text: str) -> list[str]:
    """What is wrong with the Dockerfile ``text`` (empty when nothing is)."""
    # parsed from memory: DockerfileParser() alone would read and write ./Dockerfile
    parser = DockerfileParser(fileobj=io.BytesIO(text.encode()))
    found: list[str] = []
    stages = [i for i in parser.structure if i["instruction"] == "FROM"]
    names = set()
    if len(stages) < 2:
        found.append("not multi-stage: build and run stages expected")
    for stage in stages:
        image, *rest = stage["value"].split()
        if rest[:1] == ["AS"] or rest[:1] == ["as"]:
            names.add(rest[1])
        if image in names:
            continue
        has_tag = ":" in image.split("/")[-1] or "@sha256:" in image
        if not has_tag or not PINNED.match(image):
            found.append(f"base image {image} is not pinned to a release tag or digest")
    last = stages[-1]["startline"] if stages else 0
    users = [i["value"].split(":")[0] for i in parser.structure if i["instruction"] == "USER"]
    final_users = [
        i["value"].split(":")[0]
        for i in parser.structure
        if i["instruction"] == "USER" and i["startline"] > last
    ]
    if not final_users or final_users[-1] in ("root", "0"):
        found.append(f"the final stage runs as root (USER lines: {users or 'none'})")
    runs = [i["value"] for i in parser.structure if i["instruction"] == "RUN"]
    if not any("requirements.lock" in run and "pip sync" in run for run in runs):
        found.append("dependencies are not installed with `uv pip sync ... requirements.lock`")
    for instruction in parser.structure:
        value = instruction["value"]
        if instruction["instruction"] == "ADD" and re.search(r"https?://", value):
            found.append(f"ADD downloads {value}")
        if instruction["instruction"] == "RUN" and DOWNLOAD.search(value):
            found.append(f"RUN downloads something: {value}")
        if instruction["instruction"] == "RUN" and unpinned_installs(value):
            found.append(f"RUN installs unpinned packages {unpinned_installs(value)}")
    return found


def test_there_are_a_service_and_a_notebook_image() -> None:
    assert {p.name for p in IMAGES} == {"Dockerfile", "Dockerfile.notebook"}


@pytest.mark.parametrize("dockerfile", IMAGES, ids=lambda p: p.name)
def test_the_image_is_pinned_non_root_and_built_from_the_lock(dockerfile: Path) -> None:
    assert problems(dockerfile.read_text()) == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("FROM python:3.11\nUSER app\nRUN uv pip sync requirements.lock\n", "not multi-stage"),
        (
            "FROM python:latest AS b\nRUN uv pip sync requirements.lock\nFROM b\nUSER app\n",
            "base image python:latest is not pinned",
        ),
        (
            "FROM python:3.11.14 AS b\nRUN uv pip sync requirements.lock\nFROM b\nUSER root\n",
            "runs as root",
        ),
        (
            "FROM python:3.11.14 AS b\nRUN uv pip sync requirements.lock\nUSER app\nFROM b\n",
            "runs as root",
        ),
        ("FROM python:3.11.14 AS b\nRUN pip install -r x.txt\nFROM b\nUSER app\n", "pip sync"),
        (
            "FROM python:3.11.14 AS b\nRUN uv pip sync requirements.lock\n"
            "RUN curl -fsSL https://get.example.com | sh\nFROM b\nUSER app\n",
            "RUN downloads",
        ),
        (
            "FROM python:3.11.14 AS b\nRUN uv pip sync requirements.lock && pip install uv\n"
            "FROM b\nUSER app\n",
            "unpinned",
        ),
    ],
)
def test_the_checks_catch_what_they_are_for(text: str, problem: str) -> None:
    before = [p.read_bytes() for p in IMAGES]
    assert any(problem in p for p in problems(text)), problems(text)
    assert [p.read_bytes() for p in IMAGES] == before, "checking a sample wrote a Dockerfile"


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".workbench", ".tools"} <= set(ignored)

"""docs/kubernetes: the Indexed Job recipe parses and has what makes it work (issue 18)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

from bulkput.commands import options, report  # noqa: E402
from bulkput.job.shard import Shard  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "kubernetes"


def load(name: str) -> dict[str, Any]:
    documents = list(yaml.safe_load_all((DOCS / name).read_text()))
    assert len(documents) == 1
    document: dict[str, Any] = documents[0]
    assert (document["apiVersion"], document["kind"]) == ("batch/v1", "Job")
    return document


def shell_words(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The container's ``sh -c`` line as the shell would split it, with ``env`` expanded."""
    assert container["command"] == ["sh", "-c"]
    (line,) = container["args"]
    for name, value in env.items():
        line = line.replace(f"${{{name}:-0}}", value).replace(f"${{{name}}}", value)
    assert "$" not in line, f"an unexpanded variable in {line!r}"
    words = shlex.split(line)
    assert words[:2] == ["exec", "bulkput"]
    return words[2:]


def test_the_indexed_job_retries_per_index_and_not_on_exit_1_or_2():
    spec = load("bulkput-job.yaml")["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["backoffLimitPerIndex"] >= 1
    assert "backoffLimit" not in spec  # job-wide retries would let one shard starve the rest
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # backoffLimitPerIndex requires it
    (container,) = pod["containers"]
    rules = spec["podFailurePolicy"]["rules"]
    no_retry = [r for r in rules if r["action"] == "FailIndex"]
    assert len(no_retry) == 1
    on_exit = no_retry[0]["onExitCodes"]
    assert on_exit["operator"] == "In" and sorted(on_exit["values"]) == [1, 2]
    assert on_exit["containerName"] == container["name"]


def test_the_pods_run_a_pinned_image_built_from_the_repository():
    dockerfile = (ROOT / "Dockerfile").read_text()
    base = next(line.split()[1] for line in dockerfile.splitlines() if line.startswith("FROM "))
    assert base.count(".") >= 2 or "@sha256:" in base, f"base image {base} is not pinned"
    assert "pip install --no-cache-dir ." in dockerfile  # this repository, not a package index
    for name in ("bulkput-job.yaml", "bulkput-merge-job.yaml"):
        (container,) = load(name)["spec"]["template"]["spec"]["containers"]
        image = container["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image
        assert image.split("/")[-1].startswith("bulkput:")
        assert f"docker build -t {image} ." in (DOCS / "bulkput-job.yaml").read_text()


def test_each_pod_runs_a_valid_put_of_its_shard_with_its_report_on_a_mounted_volume():
    spec = load("bulkput-job.yaml")["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    words = shell_words(container, {"JOB_COMPLETION_INDEX": "5", "ATTEMPT": "1"})
    assert words[0] == "put"
    parser = argparse.ArgumentParser(prog="bulkput put")
    options.add_put_arguments(parser)
    args = parser.parse_args(words[1:])  # every option is one put takes
    assert Shard.parse(args.shard, env={"JOB_COMPLETION_INDEX": "5"}) == Shard(5, spec["completions"])
    assert args.attempt == 1
    assert not args.journal  # no journal on a volume the pods share (SQLite WAL on NFS)
    attempt_env = next(e for e in container["env"] if e["name"] == "ATTEMPT")
    assert attempt_env["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-index-failure-count']"
    )
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    report_dir = str(Path(args.report).parent)
    assert report_dir in mounts, "the report folder is a mounted volume (it exists in every pod)"
    assert Path(args.report).name == "shard-5.attempt-1.jsonl"
    assert str(Path(args.manifest).parent) in mounts
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts[report_dir]]
    journal_like = [m for m in mounts if "state" in m or "journal" in m]
    assert not journal_like


def test_the_merge_job_reads_the_same_reports_and_is_not_retried():
    job = load("bulkput-job.yaml")["spec"]["template"]["spec"]
    merge_spec = load("bulkput-merge-job.yaml")["spec"]
    pod = merge_spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and merge_spec["backoffLimit"] == 0
    (container,) = pod["containers"]
    words = shell_words(container, {})
    parser = argparse.ArgumentParser(prog="bulkput")
    report.add_parser(parser.add_subparsers())
    args = parser.parse_args(words)
    assert args.report_command == "merge"
    (pattern,) = args.files
    claim = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in job["volumes"]}
    put_mounts = {m["mountPath"]: claim[m["name"]] for m in job["containers"][0]["volumeMounts"]}
    merge_claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    merge_mounts = {m["mountPath"]: merge_claims[m["name"]] for m in container["volumeMounts"]}
    folder = str(Path(pattern).parent)
    assert merge_mounts[folder] == put_mounts[folder]  # the same claim as the pods wrote to
    assert Path(pattern).match("shard-*.jsonl")

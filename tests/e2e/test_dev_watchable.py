"""A dev run people can watch and come back to: everything in one run folder (the kubeconfig gone
once the cluster stops), `--quiet` down to one summary line and the report's path, `--keep`
leaving the cluster up for kubectl until Ctrl-C, and a live view on one clock."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml

from tests.support.dev_process import REPO, SPEED, dev_command, dev_environment, run_dev

KEEP_TIMEOUT_SECONDS = 60.0
STAMP = re.compile(r"^\[t\+\s*(\d+)s\] ")


def test_quiet_prints_one_summary_line_and_the_report_path(tmp_path: Path):
    """--quiet: exactly two lines; the report and the agent's log are in the run folder, and the
    kubeconfig, which pointed at the stopped cluster, is not."""
    result = run_dev("--quiet", "--speed", SPEED, "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("done: 15/15 tasks, 15/15 workers Running, nodes +")
    assert lines[1].startswith(f"report: {tmp_path / 'report.html'}")
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert "decision round" in (tmp_path / "agent.log").read_text()
    assert not (tmp_path / "kubeconfig").exists()
    assert result.stderr == ""


def test_the_default_run_folder_is_printed_and_holds_the_run(tmp_path: Path):
    """Without --run-dir: a new folder under the temp directory, named in the banner; nothing
    else is left in the temp directory (no ray-ack-dev-*.kubeconfig)."""
    env = {**dev_environment(), "TMPDIR": str(tmp_path)}
    done = subprocess.run(
        dev_command("--json", "--speed", SPEED),
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = tmp_path.iterdir()
    assert folder.name.startswith("ray-ack-dev-seed-")
    assert f"run folder: {folder} " in done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["agent.log", "report.html"]
    assert json.loads(done.stdout.strip().splitlines()[-1])["scenario"] == "seed"


def test_keep_leaves_the_cluster_up_for_kubectl_until_ctrl_c(tmp_path: Path):
    """--keep: after the run, the API server still answers through the kubeconfig; Ctrl-C then
    ends with the run's exit code (0) and removes the kubeconfig."""
    process = subprocess.Popen(
        dev_command("--keep", "--quiet", "--speed", SPEED, "--run-dir", str(tmp_path)),
        cwd=REPO, env=dev_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + KEEP_TIMEOUT_SECONDS
        for line in process.stdout:
            seen.append(line)
            if line.startswith("Ctrl-C stops it") or time.monotonic() > deadline:
                break
        assert seen and seen[-1].startswith("Ctrl-C stops it"), "".join(seen)
        assert seen[0].startswith("done: ")
        kubeconfig = tmp_path / "kubeconfig"
        assert any(f"kubectl --kubeconfig {kubeconfig} get pod,node" in s for s in seen)
        server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"{server}/api/v1/nodes", timeout=10) as response:
            nodes = json.loads(response.read())["items"]
        assert nodes, "the kept cluster has its system node at least"
        process.send_signal(signal.SIGINT)
        _rest, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr[-3000:]
    assert not (tmp_path / "kubeconfig").exists()
    assert "Traceback" not in stderr


def test_the_live_view_runs_on_one_clock_with_the_agents_warnings_in_it(tmp_path: Path):
    """stockout: every line between the banner and the verdict is a `[t+…]` line, the stamps
    never go back, the NoStock warning is one of them, and the closing counts it by code."""
    result = run_dev("--scenario", "stockout", "--speed", SPEED, "--run-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("agent status: "))
    end = next(i for i, line in enumerate(lines) if line.startswith("done: "))
    live = lines[start + 1 : end]
    assert live and all(STAMP.match(line) for line in live), "\n".join(live)
    stamps = [int(STAMP.match(line).group(1)) for line in live]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)
    assert any("agent warning: scale-out failed" in line and "NoStock" in line for line in live)
    assert re.search(r"errors \d+ \(.*OperationDenied\.NoStock \d+", result.stdout)
    assert result.stderr == ""

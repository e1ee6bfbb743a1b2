"""`python -m agent sim serve` as a user runs it: files written, kubectl works, SIGTERM exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
import tempfile
from pathlib import Path

import yaml

from agent.cli import main
from tests.support.processes import sim_serve


async def test_serve_writes_files_answers_kubectl_and_stops_on_sigterm(tmp_path, clean_env):
    """The served cluster has the demo node; kubectl reads it through the written kubeconfig."""
    kubeconfig = tmp_path / "kube" / "config.yaml"
    info_path = tmp_path / "info.json"
    async with sim_serve(
        "--speed", "20",
        "--kubeconfig-out", str(kubeconfig), "--info-out", str(info_path),
        env=clean_env, banner_timeout=20,
    ) as (process, banner):  # fmt: skip
        info = json.loads(info_path.read_text())
        url = info["kubernetes"]["url"]
        assert url.startswith("http://127.0.0.1:")
        assert info["kubernetes"]["kubeconfig"] == str(kubeconfig)
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        assert f"  kubectl --kubeconfig {kubeconfig} get pod -w" in banner

        listing = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "get", "nodes", "--no-headers",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(listing.communicate(), 20)
        assert listing.returncode == 0, err.decode()
        row = out.decode().split()
        assert row[:2] == ["cn-hangzhou.172.16.0.10", "Ready"]
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0


async def test_the_default_kubeconfig_is_removed_when_the_server_stops(clean_env):
    """Without --kubeconfig-out the kubeconfig is a temp file; it goes when the server does."""
    async with sim_serve("--speed", "20", env=clean_env, banner_timeout=20) as (process, banner):
        [line] = [line for line in banner if line.startswith("kubeconfig: ")]
        kubeconfig = Path(line.removeprefix("kubeconfig: "))
        assert kubeconfig.parent == Path(tempfile.gettempdir())
        assert await asyncio.to_thread(kubeconfig.is_file)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
    assert not await asyncio.to_thread(kubeconfig.exists)


def test_unknown_scenario_is_refused_with_the_known_names(capsys):
    """--scenario with a name that is no scenario exits 2 and lists the built-in ones."""
    assert main(["sim", "serve", "--scenario", "ray-burst"]) == 2
    err = capsys.readouterr().err
    assert "scenario ray-burst: no such scenario" in err
    assert "seed" in err


def test_sim_without_subcommand_prints_help(capsys):
    """`sim` alone shows its usage and exits 2."""
    assert main(["sim"]) == 2
    assert "serve" in capsys.readouterr().out

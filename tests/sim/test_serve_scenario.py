"""`python -m agent sim serve --scenario` as a user runs it: the info JSON names all three services,
kubectl sees the scenario's Ray head through the written kubeconfig, SIGTERM exits 0 with a run
summary; bad scenarios are refused with exit 2; `sim scenarios` lists the built-in ones."""

from __future__ import annotations

import asyncio
import json
import signal

import yaml

from agent.cli import main
from agent.sim.scenario import available_scenarios, load_scenario
from tests.support.processes import sim_serve


async def test_seed_serves_all_three_services_until_sigterm(tmp_path, clean_env):
    """Info has kubernetes, cs and fc; kubectl lists the Ray head; SIGTERM → summary, exit 0."""
    kubeconfig = tmp_path / "kubeconfig"
    info_path = tmp_path / "out" / "info.json"
    async with sim_serve(
        "--scenario", "seed", "--speed", "20",
        "--info-out", str(info_path), "--kubeconfig-out", str(kubeconfig),
        env=clean_env, banner_timeout=30,
    ) as (process, banner):  # fmt: skip
        info = json.loads(info_path.read_text())
        assert {"kubernetes", "cs", "fc"} <= set(info)
        assert info["kubernetes"]["kubeconfig"] == str(kubeconfig)
        assert (
            yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
            == (info["kubernetes"]["url"])
        )
        assert info["cs"]["clusterId"] == "c-seed"
        assert info["fc"]["httpTriggerUrl"].startswith("http://127.0.0.1:")
        assert info["fc"]["httpTriggerUrlFc2"].startswith(f"http://{info['fc']['endpoint']}/")
        assert f"  kubectl --kubeconfig {kubeconfig} get node -w" in banner
        assert info["cs"]["url"] == f"http://{info['cs']['endpoint']}"
        assert info["fc"]["url"] == f"http://{info['fc']['endpoint']}"
        assert any(info["cs"]["url"] in line and "CS API" in line for line in banner)
        assert any(info["fc"]["url"] in line and "Function Compute" in line for line in banner)
        assert f"Connect an agent: python -m agent run --sim-info {info_path}" in banner

        listing = await asyncio.create_subprocess_exec(
            "kubectl", "--kubeconfig", str(kubeconfig), "--cache-dir", str(tmp_path / "cache"),
            "get", "pods", "-A", "--no-headers",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=clean_env,
        )  # fmt: skip
        out, err = await asyncio.wait_for(listing.communicate(), 30)
        assert listing.returncode == 0, err.decode()
        rows = [line.split() for line in out.decode().splitlines()]
        assert [r[0] for r in rows if r[1].startswith("myfirst-ray-cluster-head-")] == ["default"]

        process.send_signal(signal.SIGTERM)
        rest, errors = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, errors.decode()
        tail = rest.decode()
        assert "Ray job: tasks " in tail and "CS writes: 0" in tail
        assert tail.rstrip().endswith("Stopped.")


def test_a_malformed_scenario_file_is_refused_with_its_field(tmp_path, capsys):
    """A scenario file with a bad field exits 2 naming the scenario and the field path."""
    bad = tmp_path / "mine.yaml"
    bad.write_text(
        "ray: {name: r, workerGroups: [{name: w, requests: {cpu: '1'}}]}\n"
        "job: {tasks: [{count: 1, durationSeconds: 1}]}\npools: [{id: p}]\n"
    )
    assert main(["sim", "serve", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: scenario mine: pools[0]")


def test_a_scenario_file_that_is_not_yaml_is_refused(tmp_path, capsys):
    """Unparseable YAML exits 2 with the parser's complaint, not a traceback."""
    bad = tmp_path / "broken.yaml"
    bad.write_text("pools: [\n")
    assert main(["sim", "serve", "--scenario", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("error: scenario broken: not valid YAML")


def test_bare_cluster_options_are_refused_with_a_scenario(capsys):
    """--no-demo-node belongs to the bare cluster; --seed and --no-faults need a scenario."""
    assert main(["sim", "serve", "--scenario", "seed", "--no-demo-node"]) == 2
    assert main(["sim", "serve", "--no-faults"]) == 2
    assert main(["sim", "serve", "--scenario", "seed", "--speed", "0"]) == 2
    assert capsys.readouterr().err.count("error: ") == 3


def test_scenarios_lists_each_built_in_scenario_with_its_description(capsys):
    """`sim scenarios` prints one line per scenario: name, then its description."""
    assert main(["sim", "scenarios"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == available_scenarios()
    seed_line = next(line for line in lines if line.startswith("seed "))
    assert seed_line.endswith(load_scenario("seed").description)

"""The SLURM profile: what it asks for, and the workflow through a real (loopback) Slurm.

The last test installs and starts a single-node Slurm bound to 127.0.0.1 (tools/loopback_slurm.py)
and runs part of the smoke config through snakemake-executor-plugin-slurm with the profile adapted
the way the README says (tools/slurm_cluster_test.py --quick: about 1.5 minutes). It is skipped,
with the reason, where it cannot run: not root, not Debian, packages not reachable, a Slurm
already configured or running, or MLIP_SKIP_CLUSTER_TEST set.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tools"))
import loopback_slurm  # noqa: E402
import slurm_cluster_test  # noqa: E402

PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
GPU_RULES = {"train_method", "evaluate_model"}


def adapted(**overrides):
    settings = dict(cpu_partition="c1", gpu_partition="g1", account="acct", gpu_model="h100")
    settings.update(overrides)
    return slurm_cluster_test.adapt_profile(PROFILE.read_text(), **settings)


def test_adapting_the_profile_changes_only_the_lines_marked_adapt():
    original = PROFILE.read_text()
    text = adapted()
    changed = slurm_cluster_test.changed_lines(original, text)
    assert changed and all("ADAPT" in line for line in changed)
    profile = yaml.safe_load(text)
    assert "slurm-no-account" not in profile
    assert profile["default-resources"]["slurm_partition"] == "c1"
    assert profile["default-resources"]["slurm_account"] == "acct"
    for rule in GPU_RULES:  # the anchors carry the one GPU partition and model to every GPU rule
        assert profile["set-resources"][rule]["slurm_partition"] == "g1"
        assert profile["set-resources"][rule]["gpu_model"] == "h100"
        assert profile["set-resources"][rule]["gpu"] == 1
    without_account = yaml.safe_load(adapted(account=None))
    assert without_account["slurm-no-account"] is True
    assert "slurm_account" not in without_account["default-resources"]


def test_the_shipped_profile_asks_gpus_only_for_training_and_relaxation_rules():
    profile = yaml.safe_load(PROFILE.read_text())
    assert profile["executor"] == "slurm" and profile["slurm-requeue"] is True
    with_gpu = {rule for rule, res in profile["set-resources"].items() if res.get("gpu")}
    assert GPU_RULES <= with_gpu
    assert "gpu" not in profile["default-resources"] and "gpu_model" not in profile["default-resources"]


def test_profile_resolves_resources_per_rule_in_a_dry_run():
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(BIN / "snakemake"), "transfer", "-n", "--forceall", "--profile", "profiles/slurm",
         "--configfile", "config/smoke.yaml"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    blocks = re.split(r"\n(?=\[.*\d{4}\]\n)", result.stdout + result.stderr)
    resources = {}
    for block in blocks:
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        res = re.search(r"resources: (.*)", block)
        if rule and res:
            resources.setdefault(rule.group(1), res.group(1))
    assert "gpu=1" in resources["train_method"] and "slurm_partition=gpu" in resources["train_method"]
    assert "gpu=1" in resources["evaluate_model"]
    for rule in ("parse_dataset", "split_dataset", "table1", "transfer_figure"):
        assert "gpu=" not in resources[rule] and "slurm_partition=cpu" in resources[rule], rule
    assert "mem_mb=8000" in resources["parse_dataset"] or "mem_mb=<TBD>" in resources["parse_dataset"]


def test_sbatch_calls_are_read_from_the_plugin_log():
    log = (
        "sbatch call: sbatch --parsable --job-name x --output /w/.snakemake/slurm_logs/"
        "rule_train_method/4_m/%j.log --export=ALL --comment rule_train_method_wildcards_4_m "
        " -A ci  -p ci-gpu -t 1440 --mem 6000 --cpus-per-task=2 -D /w --gpus=fake:1 "
        '--wrap="python -m snakemake --target-jobs \'train_method:method=4_m\'"\n'
        "Job 0 has been submitted with SLURM jobid 7 (log: /w/.snakemake/slurm_logs/"
        "rule_train_method/4_m/7.log).\n"
    )
    (submission,) = slurm_cluster_test.parse_submissions(log)
    assert submission.rule == "train_method" and submission.job_id == "7"
    assert submission.option("--gpus") == "fake:1" and submission.option("-p") == "ci-gpu"
    assert "--wrap=" in slurm_cluster_test.short_call(submission.call)


@pytest.mark.slow
@pytest.mark.cluster  # runs after the smoke run has finished (tests/conftest.py)
def test_workflow_runs_through_a_real_slurm_with_the_adapted_profile(tmp_path):
    if os.environ.get("MLIP_SKIP_CLUSTER_TEST"):
        pytest.skip("MLIP_SKIP_CLUSTER_TEST is set")
    try:
        loopback_slurm.preflight()
        result = slurm_cluster_test.run_cluster_test(tmp_path, quick=True, timeout=280)
    except loopback_slurm.Unavailable as reason:
        pytest.skip(f"no loopback Slurm on this machine: {reason}")
    log = Path(result.log_path).read_text() if result.log_path else ""
    assert not result.failures, "\n".join(result.failures) + "\n--- snakemake log tail\n" + log[-4000:]
    print("wall times (s):", {k: round(v, 1) for k, v in result.wall_s.items()})
    for rule, call in result.sbatch.items():
        print(f"{rule}: {call}")

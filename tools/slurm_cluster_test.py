"""The workflow through a real Slurm: the cluster test of profiles/slurm.

    sudo .venv/bin/python tools/slurm_cluster_test.py             # the smoke config's `all`
    sudo .venv/bin/python tools/slurm_cluster_test.py --quick     # the subset tests/workflow/test_cluster.py runs

On a Debian machine where it may run as root, this

1. installs Debian's slurm-wlm, slurmdbd, munge and MariaDB if missing and starts a single-node
   cluster bound to 127.0.0.1 only, with a fake GPU (tools/loopback_slurm.py);
2. copies the workflow to a scratch folder and adapts ``profiles/slurm`` the way the README tells
   a user to: only the lines marked ADAPT (partitions, account, GPU model) change;
3. runs the smoke config through the SLURM executor plugin, plus one rule that fails on purpose;
4. checks every output (a dry run afterwards must find nothing to do but the failing rule), the
   failing rule's error (Snakemake's message, Slurm's FAILED state and exit code 3, its log),
   the sbatch lines (the training rule asks for the GPU partition and a GPU, the analysis rule
   for neither) and Slurm's accounting (the GPU was allocated);
5. stops every daemon it started, by pid, and cancels any job left (also on failure or Ctrl-C).

Everything runs under a hard timeout (``--timeout``, default 900 s; the workflow itself under
``timeout -s KILL``). It prints the wall times and the sbatch lines, and writes them as JSON
with ``--json``. Exit status 0: passed; 1: a check failed; 2: this machine cannot run it (the
reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loopback_slurm  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# tests/fixtures: small reference files a config may point at (a user's clone has them too).
WORKFLOW_FILES = (
    "Snakefile", "config", "workflow", "notebooks", "resources", "profiles", "envs", "tests/fixtures"
)
CONFIG = "config/smoke.yaml"
OUT = "results/smoke"
TRAINING_RULE = "train_method"
ANALYSIS_RULE = "dataset_summary"
FAILING_RULE = "deliberately_failing"
FAILING_MESSAGE = "deliberate failure for the cluster test"
# The subset tests/workflow/test_cluster.py runs: parse and split, one training rule (GPU), one analysis
# rule with its papermill notebook (CPU), the notebook's HTML (a local rule) and the failing rule.
QUICK_TARGETS = [
    f"{OUT}/training/4_refit_atomref/model_final.pt",
    # The executed notebook (the HTML pages are one job over every notebook of the run).
    f"{OUT}/notebooks/dataset_summary.ipynb",
]
FAILING_TARGET = f"{OUT}/cluster_check/never_written.txt"

CHECK_SNAKEFILE = f'''# The workflow plus one rule that fails on purpose; written by tools/slurm_cluster_test.py.


include: "Snakefile"


rule {FAILING_RULE}:
    output:
        "{FAILING_TARGET}",
    log:
        f"{{LOGS}}/{FAILING_RULE}.log",
    shell:
        "echo '{FAILING_MESSAGE}' | tee {{log}} >&2; exit 3"
'''


def copy_workflow(workdir: Path) -> Path:
    """The files a user's clone has, without results or downloads."""
    workdir.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("external"))
        else:
            shutil.copy2(source, workdir / name)
    (workdir / "cluster_check.smk").write_text(CHECK_SNAKEFILE)
    return workdir


def adapt_profile(
    text: str, *, cpu_partition: str, gpu_partition: str, account: str | None, gpu_model: str
) -> str:
    """The README's edits to profiles/slurm/config.yaml, on the lines marked ADAPT only."""
    lines = []
    for line in text.splitlines():
        if "ADAPT" not in line or line.startswith("#"):  # header comments mention ADAPT too
            lines.append(line)
            continue
        key = line.split(":", 1)[0].strip().lstrip("# ").strip()
        if key == "slurm-no-account":
            if account is None:
                lines.append(line)
            continue  # deleted when the cluster has accounts
        if key == "slurm_account":
            if account is not None:
                line = line.replace("# slurm_account", "slurm_account", 1)
                line = re.sub(r'"[^"]*"', f'"{account}"', line, count=1)
        elif key == "slurm_partition":
            value = gpu_partition if "&gpu_partition" in line else cpu_partition
            line = re.sub(r'"[^"]*"', f'"{value}"', line, count=1)
        elif key == "gpu_model":
            line = re.sub(r'"[^"]*"', f'"{gpu_model}"', line, count=1)
        else:
            raise ValueError(f"unknown ADAPT line in the profile: {line!r}")
        lines.append(line)
    return "\n".join(lines) + "\n"


def changed_lines(before: str, after: str) -> list[str]:
    """Lines of `before` that `after` changes or drops (the profile's lines are unique)."""
    kept = set(after.splitlines())
    return [line for line in before.splitlines() if line not in kept]


@dataclass
class Submission:
    rule: str
    call: str
    args: list[str]
    job_id: str | None = None
    log: str | None = None

    def option(self, name: str) -> str | None:
        for i, arg in enumerate(self.args):
            if arg == name and i + 1 < len(self.args):
                return self.args[i + 1]
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
        return None


def parse_submissions(log: str) -> list[Submission]:
    """The plugin's sbatch calls (logged with --verbose) and the Slurm job id of each."""
    submissions = []
    pending: list[Submission] = []
    for line in log.splitlines():
        if "sbatch call: " in line:
            call = line.split("sbatch call: ", 1)[1].strip()
            args = shlex.split(call.split(" --wrap=", 1)[0])
            comment = dict(zip(args, args[1:])).get("--comment", "")
            rule = comment.removeprefix("rule_").split("_wildcards_")[0]
            submission = Submission(rule, call, args)
            submissions.append(submission)
            pending.append(submission)
        elif match := re.search(r"submitted with SLURM jobid (\d+) \(log: (.+?)\)", line):
            job_id, path = match.groups()
            rule = re.search(r"/rule_([^/]+)/", path)
            for submission in pending:
                if rule and submission.rule == rule.group(1):
                    submission.job_id, submission.log = job_id, path
                    pending.remove(submission)
                    break
    return submissions


def short_call(call: str) -> str:
    """An sbatch line without its long --wrap payload, for notes and messages."""
    head, _, _ = call.partition(" --wrap=")
    return head + ' --wrap="python -m snakemake ... (the job)"'


@dataclass
class Result:
    wall_s: dict[str, float] = field(default_factory=dict)
    sbatch: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, dict] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    log_path: str = ""

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(message)


def run_cluster_test(
    scratch: Path, *, quick: bool, timeout: float = 900, snakemake: str | None = None
) -> Result:
    """Everything but the preflight: install, start, run, check, stop. Raises Unavailable."""
    deadline = time.monotonic() + timeout
    result = Result()
    start = time.monotonic()
    result.wall_s["apt_install"] = loopback_slurm.install_packages(timeout=min(300, timeout / 2))
    snakemake = snakemake or str(Path(sys.executable).parent / "snakemake")
    workdir = copy_workflow(scratch / "repo")
    original = (workdir / "profiles" / "slurm" / "config.yaml").read_text()
    adapted = adapt_profile(
        original,
        cpu_partition=loopback_slurm.CPU_PARTITION,
        gpu_partition=loopback_slurm.GPU_PARTITION,
        account=loopback_slurm.ACCOUNT,
        gpu_model=loopback_slurm.GPU_TYPE,
    )
    changed = changed_lines(original, adapted)
    result.check(
        changed and all("ADAPT" in line for line in changed),
        f"adapting the profile changed lines not marked ADAPT: {changed}",
    )
    profile = workdir / "profiles" / "slurm-ci"
    profile.mkdir()
    (profile / "config.yaml").write_text(adapted)

    with loopback_slurm.LoopbackSlurm(logs_to=scratch / "slurm-logs") as cluster:
        result.wall_s["daemons_up"] = cluster.timings["daemons_up_s"]
        env = {
            **cluster.env,
            "PATH": f"{Path(snakemake).parent}{os.pathsep}{os.environ['PATH']}",
        }
        if quick:
            targets = [*QUICK_TARGETS, FAILING_TARGET]
            # Scheduling is what is tested, not the science: train on 16 frames, with one thread
            # (the documented --set-threads override) so the analysis job runs beside it.
            (workdir / "cluster_quick.yaml").write_text("training:\n  max_train_frames: 16\n")
            configs = [CONFIG, "cluster_quick.yaml"]
            extra = ["--set-threads", f"{TRAINING_RULE}=1"]
        else:
            targets = ["all", "transfer", FAILING_TARGET]
            configs, extra = [CONFIG], []
        # Test-only settings, none a resource request: poll every 2 s instead of 30 s, no retry
        # of the failing job, at most three jobs queued.
        options = [
            "--profile", "profiles/slurm-ci", "--jobs", "3", "--retries", "0",
            "--latency-wait", "5", "--slurm-init-seconds-before-status-checks", "2", *extra,
            "--configfile", *configs,
        ]
        command = [
            "timeout", "-s", "KILL", str(int(max(10, deadline - time.monotonic() - 30))),
            snakemake, "--snakefile", "cluster_check.smk", *targets, "--verbose", *options,
        ]
        run_start = time.monotonic()
        process = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True)
        result.wall_s["workflow"] = time.monotonic() - run_start
        log = process.stdout + process.stderr
        log_path = scratch / "snakemake_slurm.log"
        log_path.write_text(log)
        result.log_path = str(log_path)
        result.check(
            process.returncode not in (124, 137, -9),
            f"the workflow hit the hard timeout ({process.returncode})",
        )
        result.check(process.returncode != 0, "the run succeeded although one rule must fail")
        cluster.check_loopback_only()

        submissions = parse_submissions(log)
        by_rule = {}
        for submission in submissions:
            by_rule.setdefault(submission.rule, submission)
        expected_rules = {"parse_dataset", "split_dataset", TRAINING_RULE, ANALYSIS_RULE, FAILING_RULE}
        if not quick:
            expected_rules |= {"evaluate_model", "energy_scale_figure", "transfer_figure", "table1"}
        result.check(
            expected_rules <= set(by_rule),
            f"rules not submitted through sbatch: {expected_rules - set(by_rule)}",
        )
        local = {"notebook_html", "report_provenance", "all"}
        result.check(
            not local & set(by_rule), f"local rules went through the queue: {local & set(by_rule)}"
        )
        for rule in (TRAINING_RULE, ANALYSIS_RULE):
            if rule in by_rule:
                result.sbatch[rule] = short_call(by_rule[rule].call)

        gpu = f"{loopback_slurm.GPU_TYPE}:1"
        train = by_rule.get(TRAINING_RULE)
        if train:
            result.check(train.option("--gpus") == gpu, f"training sbatch without --gpus={gpu}: {train.call}")
            result.check(
                train.option("-p") == loopback_slurm.GPU_PARTITION,
                f"training sbatch not on the GPU partition: {train.call}",
            )
            result.check(
                train.option("-A") == loopback_slurm.ACCOUNT, f"training sbatch without the account: {train.call}"
            )
        analysis = by_rule.get(ANALYSIS_RULE)
        if analysis:
            result.check(
                analysis.option("--gpus") is None and analysis.option("--gres") is None,
                f"analysis sbatch asks for a GPU: {analysis.call}",
            )
            result.check(
                analysis.option("-p") == loopback_slurm.CPU_PARTITION,
                f"analysis sbatch not on the CPU partition: {analysis.call}",
            )

        for submission in submissions:
            if submission.job_id is None:
                result.failures.append(f"no Slurm job id logged for {submission.rule}")
                continue
            records = cluster.sacct(submission.job_id)
            record = records[0] if records else {}
            result.jobs[f"{submission.rule}:{submission.job_id}"] = record
            if submission.rule == FAILING_RULE:
                # The job step's Snakemake exits 1 whatever the rule's own exit code was.
                result.check(
                    record.get("State") == "FAILED" and record.get("ExitCode") != "0:0",
                    f"failing rule's Slurm record: {record}",
                )
            else:
                result.check(record.get("State") == "COMPLETED", f"{submission.rule}: {record}")
            if submission.rule == TRAINING_RULE:
                result.check("gres/gpu=1" in record.get("AllocTRES", ""), f"no GPU allocated: {record}")
            if submission.rule == ANALYSIS_RULE:
                result.check("gres/gpu" not in record.get("AllocTRES", ""), f"GPU allocated: {record}")

        # The failing rule's error as a user sees it: Snakemake names the rule, Slurm's state and
        # the log; the Slurm log of the job (kept because it failed) and the rule's log hold the
        # message.
        result.check(f"Error in rule {FAILING_RULE}" in log, "no 'Error in rule' for the failing rule")
        result.check("SLURM status is: 'FAILED'" in log, "Slurm's FAILED status not reported")
        failing = by_rule.get(FAILING_RULE)
        if failing and failing.log:
            slurm_log = workdir / failing.log if not Path(failing.log).is_absolute() else Path(failing.log)
            result.check(
                slurm_log.is_file() and FAILING_MESSAGE in slurm_log.read_text(),
                f"the failing job's Slurm log {slurm_log} lacks its message",
            )
        rule_log = workdir / OUT / "logs" / f"{FAILING_RULE}.log"
        result.check(
            rule_log.is_file() and FAILING_MESSAGE in rule_log.read_text(), "the failing rule's log lacks its message"
        )

        # Every other output is there and complete: a dry run finds only the failing rule to do.
        dry = subprocess.run(
            [
                "timeout", "-s", "KILL", "120", snakemake, "--snakefile", "cluster_check.smk",
                *targets, "-n", *options,
            ],
            cwd=workdir, env=env, capture_output=True, text=True,
        )
        remaining = set(re.findall(r"^\s*rule (\w+):", dry.stdout + dry.stderr, flags=re.M))
        result.check(
            remaining <= {FAILING_RULE, "all"},
            f"after the run, a dry run still wants to run {sorted(remaining)}",
        )
        figures = sorted((workdir / OUT / "figures").glob("*.png"))
        result.check(bool(figures), "no figures written")
        for figure in figures:
            result.check(figure.stat().st_size > 10_000, f"{figure.name} is too small")
        model = workdir / OUT / "training" / "4_refit_atomref" / "model_final.pt"
        result.check(model.is_file() and model.stat().st_size > 100_000, "the trained model is missing")
        if not quick:
            for name in ("dataset_summary", "fig2b_referenced_energies", "table1", "fig3a_gradients"):
                result.check((workdir / OUT / "figures" / f"{name}.png").is_file(), f"{name}.png missing")
            result.check((workdir / OUT / "report" / "provenance.html").is_file(), "no provenance")
        for notebook in (workdir / OUT / "notebooks").glob("*.ipynb"):
            executed = json.loads(notebook.read_text())
            errors = [
                output
                for cell in executed["cells"]
                for output in cell.get("outputs", [])
                if output.get("output_type") == "error"
            ]
            result.check(not errors, f"{notebook.name} has error outputs")
            if not quick:  # notebook_html converts all notebooks at once, in the full run only
                result.check(notebook.with_suffix(".html").is_file(), f"{notebook.name} has no HTML copy")
    result.wall_s["total"] = time.monotonic() - start
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the subset the test suite runs")
    parser.add_argument("--timeout", type=float, default=900, help="hard limit in seconds")
    parser.add_argument("--json", type=Path, help="write wall times, sbatch lines and jobs here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    try:
        loopback_slurm.preflight()
    except loopback_slurm.Unavailable as reason:
        print(f"cannot run the cluster test here: {reason}")
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="mlip-cluster-test-"))
    try:
        result = run_cluster_test(scratch, quick=args.quick, timeout=args.timeout)
    except loopback_slurm.Unavailable as reason:
        print(f"cannot run the cluster test here: {reason}")
        return 2
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    summary = {
        "passed": not result.failures,
        "failures": result.failures,
        "wall_s": {k: round(v, 1) for k, v in result.wall_s.items()},
        "sbatch": result.sbatch,
        "jobs": result.jobs,
        "scratch": str(scratch) if args.keep else None,
    }
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

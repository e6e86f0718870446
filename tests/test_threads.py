"""The thread policy: what allowed_cpus reads (affinity, cgroup quota, SLURM), use_threads sets torch's
threads, and --threads reaches it from the command line (a bad count is a one-line error, status 2)."""

import pytest
import torch

import glm
import glm.commands
from glm import threads
from glm.commands import main


@pytest.fixture
def two_cpus(monkeypatch, tmp_path):
    """A machine of 2 CPUs, no cgroup quota, no SLURM, nothing else running."""
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(threads.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(threads, "CGROUP", tmp_path / "cgroup")
    monkeypatch.setattr(threads, "busy_cpus", lambda: 0)
    monkeypatch.setattr(threads, "_chosen", None)  # nothing chosen yet in this process
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield tmp_path / "cgroup"
    torch.set_num_threads(before)


def test_allowed_cpus_is_the_fewest_of_affinity_cgroup_quota_and_slurm(two_cpus, monkeypatch) -> None:
    assert threads.allowed_cpus() == 2
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5, 6, 7}, raising=False)
    assert threads.allowed_cpus() == 8
    two_cpus.mkdir()
    (two_cpus / "cpu.max").write_text("max 100000\n")  # cgroup v2 without a quota
    assert threads.allowed_cpus() == 8
    (two_cpus / "cpu.max").write_text("350000 100000\n")  # 3.5 CPUs: rounded down
    assert threads.allowed_cpus() == 3
    (two_cpus / "cpu.max").write_text("50000 100000\n")  # half a CPU: still one thread
    assert threads.allowed_cpus() == 1
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    (two_cpus / "cpu.max").write_text("600000 100000\n")
    assert threads.allowed_cpus() == 2


def test_cgroup_v1_quota(two_cpus) -> None:
    (two_cpus / "cpu").mkdir(parents=True)
    (two_cpus / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    (two_cpus / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert threads.cgroup_cpus(two_cpus) is None
    (two_cpus / "cpu" / "cpu.cfs_quota_us").write_text("150000\n")
    assert threads.cgroup_cpus(two_cpus) == 1.5


def test_use_threads_sets_torch_and_never_exceeds_the_allowed_cpus(two_cpus, monkeypatch) -> None:
    assert glm.use_threads(1) == 1 and torch.get_num_threads() == 1
    assert glm.use_threads(16) == 2 and torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "busy_cpus", lambda: 1)
    assert glm.use_threads() == 2  # a count chosen before stays, whatever the load
    monkeypatch.setattr(threads, "_chosen", None)  # nothing chosen: the policy
    monkeypatch.setattr(threads, "busy_cpus", lambda: 0)
    assert glm.use_threads() == 2  # an idle machine: every allowed CPU
    monkeypatch.setattr(threads, "busy_cpus", lambda: 1)
    assert glm.use_threads() == 1 and torch.get_num_threads() == 1  # a busy neighbour: one thread
    monkeypatch.setattr(threads, "busy_cpus", lambda: 5)
    assert glm.use_threads() == 1  # never fewer than one
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert glm.use_threads() == 2  # the user's explicit choice wins over the load
    with pytest.raises(glm.InputError, match="at least 1"):
        glm.use_threads(0)


def test_busy_cpus_reads_the_runnable_tasks_of_proc_loadavg(monkeypatch, tmp_path) -> None:
    loadavg = tmp_path / "loadavg"
    loadavg.write_text("3.10 2.00 1.50 3/120 4567\n")  # this reader and 2 others
    monkeypatch.setattr(threads, "LOADAVG", loadavg)
    tasks = tmp_path / "task"
    for task, state in (("10", "R"), ("11", "S"), ("12", "S")):  # the reader runs, torch's threads sleep
        (tasks / task).mkdir(parents=True)
        (tasks / task / "stat").write_text(f"{task} (python (glm)) {state} 1 2 3\n")
    monkeypatch.setattr(threads, "OWN_TASKS", tasks)
    assert threads.busy_cpus(samples=2, interval=0) == 2
    (tasks / "11" / "stat").write_text("11 (python (glm)) R 1 2 3\n")  # a thread of ours still spinning
    assert threads.busy_cpus(samples=2, interval=0) == 1  # is not a busy neighbour
    monkeypatch.setattr(threads, "LOADAVG", tmp_path / "missing")
    assert threads.busy_cpus(samples=2, interval=0) == 0


def test_loader_workers_and_threads_share_the_allowed_cpus(two_cpus) -> None:
    glm.use_threads(2)
    assert threads.loader_workers(0) == 0 and torch.get_num_threads() == 2
    assert threads.loader_workers(4) == 1 and torch.get_num_threads() == 1  # the main process keeps one CPU


@pytest.mark.parametrize("argv", [["--threads", "1", "plot", "runs/none"], ["plot", "runs/none", "--threads", "1"]])
def test_threads_option_reaches_use_threads(argv, monkeypatch) -> None:
    seen = []
    monkeypatch.setattr(glm.commands, "use_threads", seen.append)
    main(argv)  # plot then fails on the missing run: the threads were set before it ran
    assert seen == [1]
    main(["plot", "runs/none"])
    assert seen == [1, None]  # no flag: the policy


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_bad_thread_count_is_a_one_line_error(value, capsys) -> None:
    assert main(["eval", "model", "x.fa", "--threads", value]) == 2
    assert main(["--threads", value, "eval", "model", "x.fa"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all("--threads: must be at least 1" in line for line in errors)


def test_load_applies_the_policy_and_keeps_a_count_chosen_before(two_cpus, monkeypatch) -> None:
    from conftest import ROOT

    model = ROOT / "tests" / "data" / "model_format1"
    glm.load(model, device="cpu")  # two idle CPUs: the policy takes both
    assert torch.get_num_threads() == 2
    monkeypatch.setattr(threads, "busy_cpus", lambda: 1)  # one busy neighbour: one thread
    glm.load(model, device="cpu")
    assert torch.get_num_threads() == 1
    monkeypatch.setattr(threads, "busy_cpus", lambda: 0)
    glm.load(model, device="cpu", threads=1)
    assert torch.get_num_threads() == 1
    glm.load(model, device="cpu")  # as `glm --threads 1 eval` loads its model: the choice stays
    assert torch.get_num_threads() == 1

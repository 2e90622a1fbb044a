"""The benchmarks' process-tree counters read a server's master and its workers, not a
worker's own children nor unrelated processes."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.common import _tree_pids, process_tree_context_switches, process_tree_cpu

# A child that starts a grandchild, prints both pids, then waits to be stopped.
FAMILY = """
import subprocess, sys
grandchild = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                              stdin=subprocess.PIPE)
print(grandchild.pid, flush=True)
sys.stdin.read()
grandchild.stdin.close()
grandchild.wait()
"""


def test_the_tree_is_the_root_and_its_direct_children():
    child = subprocess.Popen([sys.executable, "-c", FAMILY], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        grandchild = int(child.stdout.readline())
        pids = _tree_pids(os.getpid())
        assert os.getpid() in pids and child.pid in pids
        assert grandchild not in pids and os.getppid() not in pids
        assert set(_tree_pids(child.pid)) == {child.pid, grandchild}
    finally:
        child.stdin.close()
        child.wait(timeout=10)


def test_the_counters_count_the_processes_work():
    assert process_tree_cpu(os.getpid()) > 0
    assert process_tree_context_switches(os.getpid()) > 0

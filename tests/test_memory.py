"""Training keeps the memory a step frees for the next step (train.freed_memory_kept): without it glibc
unmaps every large block when it is freed and the next step faults it in again, page by page."""

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")

# In a fresh process: glibc's thresholds move with what the process freed before (other tests' training).
STEPS = """
import json, resource, torch
from huggingtweets.train import freed_memory_kept

def page_faults_of_steps(steps=20):
    # each "step" allocates, writes and frees 64 MiB, as a step's logits and gradients do
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        block = torch.empty(16 * 2**20, dtype=torch.float32)
        block.fill_(1.0)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

plain = page_faults_of_steps()
with freed_memory_kept():
    kept = page_faults_of_steps()
print(json.dumps({"plain": plain, "kept": kept}))
"""


def test_a_freed_block_is_reused_while_training():
    done = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, check=True)
    faults = json.loads(done.stdout.strip().splitlines()[-1])
    assert faults["plain"] >= 20 * 32  # each step faults its 64 MiB in again (16,384 pages; 32 with huge pages)
    assert faults["kept"] < faults["plain"] / 4  # faulted in once (or in the first few steps), then reused

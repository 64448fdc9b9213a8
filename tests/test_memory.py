"""Training keeps the memory a step frees for the next step (train.freed_memory_kept): without it glibc
unmaps every large block when it is freed and the next step faults it in again, page by page."""

import platform
import resource

import pytest
import torch

from huggingtweets.train import freed_memory_kept

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")


def page_faults_of_steps(steps: int = 20) -> int:
    """Minor page faults of `steps` "steps" that each allocate, write and free 64 MiB, as a step's logits do."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        block = torch.empty(16 * 2**20, dtype=torch.float32)
        block.fill_(1.0)
        del block
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def test_a_freed_block_is_reused_while_training_and_handed_back_after():
    plain = page_faults_of_steps()
    assert plain >= 20 * 32  # each step faults its 64 MiB in again (16,384 pages; 32 where huge pages are on)

    with freed_memory_kept():
        kept = page_faults_of_steps()
    assert kept < plain / 10  # faulted in once, then reused

    assert page_faults_of_steps() > plain / 2  # the system's defaults are back

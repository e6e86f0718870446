"""Running work on several processes that Lightning starts: scoring in shards (glm.io.shards).

The processes start the ways pretraining's do (docs/SCALING.md), through Lightning Fabric: by
Lightning itself (`--devices N`: it runs the same command again for ranks 1 to N-1), by torchrun,
or by SLURM's `srun`, which must start devices x nodes processes (the check pretraining makes).
Each process runs `work(ranks, device)` on its own device (cuda:LOCAL_RANK on GPUs, the CPU
otherwise); the processes share a process group (gloo on CPUs, NCCL on GPUs) for their barriers.
Nothing is trained and no model is wrapped: Fabric only starts the processes and syncs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch
from lightning_fabric import Fabric

from glm.config import TrainConfig
from glm.errors import InputError
from glm.io.shards import Ranks
from glm.training.trainer import check_hardware, check_launcher, lightning_notices_silenced, processes

T = TypeVar("T")


@dataclass(frozen=True)
class FabricRanks:
    """The processes of a Fabric run, as glm.io.shards sees them."""

    fabric: Fabric

    @property
    def rank(self) -> int:
        return self.fabric.global_rank

    @property
    def world_size(self) -> int:
        return self.fabric.world_size

    def barrier(self) -> None:
        self.fabric.barrier()


def on_processes(work: Callable[[Ranks, str], T], device: str | None, devices: int, num_nodes: int) -> T:
    """`work(ranks, device)` on `devices` processes on each of `num_nodes` machines; returns this rank's result.

    device: "cpu", "cuda" or None (a GPU per process when there are GPUs, else the CPU).
    """
    if device not in (None, "cpu", "cuda"):
        raise InputError(f"--device {device}: with several processes each takes its own GPU; use cuda or cpu")
    hardware = TrainConfig(accelerator=device or "auto", devices=str(devices), num_nodes=num_nodes)
    check_hardware(hardware)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device != "cpu" and gpus and devices > gpus:
        raise InputError(f"--devices {devices}: this machine has {gpus} GPU(s), one a process; or use --device cpu")
    check_launcher(processes(hardware))
    with lightning_notices_silenced():
        fabric = Fabric(accelerator=hardware.accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
        return fabric.launch(_run, work)


def _run(fabric: Fabric, work: Callable[[Ranks, str], T]) -> T:
    return work(FabricRanks(fabric), str(fabric.device))

"""Multi-host start-up: `jax.distributed.initialize` when the config asks for it.

On TPU pods (and SLURM / GPU clusters jax knows) no arguments are needed; on CPU hosts give the
coordinator address, the number of processes and this process's id (gloo collectives).
"""

from __future__ import annotations

import jax


def initialize_distributed(dist_cfg) -> None:
    """Joins the multi-process job described by `config.distributed` (no-op when disabled)."""
    if not dist_cfg.enabled or jax.distributed.is_initialized():
        return
    kwargs = {}
    if dist_cfg.coordinator_address:
        if dist_cfg.num_processes < 1 or not 0 <= dist_cfg.process_id < dist_cfg.num_processes:
            raise ValueError(
                "config.distributed.num_processes/process_id: expected num_processes >= 1 and "
                f"0 <= process_id < num_processes, got {dist_cfg.num_processes}/"
                f"{dist_cfg.process_id}")
        kwargs = dict(coordinator_address=dist_cfg.coordinator_address,
                      num_processes=dist_cfg.num_processes, process_id=dist_cfg.process_id)
    jax.distributed.initialize(**kwargs)

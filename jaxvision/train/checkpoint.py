"""orbax checkpoints of the train state together with the data iterator's position.

Saves go to `workdir/checkpoints/<step>`, written to a temporary directory and renamed when
complete, so a crash mid-write leaves the previous checkpoint as the latest one.
"""

from __future__ import annotations

import os

import grain
import orbax.checkpoint as ocp


class Checkpoints:
    """Periodic saves (keep the newest `keep`), restore of the latest, data state included."""

    def __init__(self, directory: str, *, every: int, keep: int):
        if every < 1 or keep < 1:
            raise ValueError(
                f"checkpoint every/keep: expected positive integers, got {every}/{keep}")
        self.every = every
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self.manager = ocp.CheckpointManager(os.path.abspath(directory), options=options,
                                             item_names=("state", "data"))

    @property
    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state, data_iterator, *, force: bool = False) -> bool:
        """Saves if `step` is a multiple of `every` (or `force`) and not saved yet; returns
        whether it saved."""
        if not (force or step % self.every == 0) or step == self.manager.latest_step():
            return False
        return self.manager.save(
            step, force=True,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    data=grain.checkpoint.CheckpointSave(data_iterator)))

    def restore(self, abstract_state, data_iterator=None, step: int | None = None):
        """The state at `step` (default: latest) with shardings of `abstract_state`; the data
        iterator (when given) is moved to where it was when that state was saved."""
        step = self.manager.latest_step() if step is None else step
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        return self.manager.restore(step, args=ocp.args.Composite(**items))["state"]

    def wait(self):
        self.manager.wait_until_finished()

    def close(self):
        self.manager.close()

"""Starting or resuming a run in its directory, and what a resumed run may change.

A new run never overwrites a run that has a checkpoint (--resume continues it); what an earlier run
that stopped before its first checkpoint left (config.yaml, logs/, curves.png, checkpoints/) is
removed first, so the new run's logs and curves are its own. A stopped run says the command that
resumes it (resume_command).

A resumed run continues the saved run's trajectory, so its model, data and optimisation stay as
saved in config.yaml; an option or a preset given with --resume that asks for another value is an
InputError naming each field, both values and the fix (drop the option, or start a new run with
another --out), never a size mismatch deep in Lightning or a preset silently ignored. What may
change (a note says what did) is what does not change what a step computes:

  train.max_steps, train.max_time       the budget: extend or shorten a run (the learning-rate
                                        schedule then spans the new budget)
  train.accelerator, precision, strategy, compile, activation_checkpointing
                                        the hardware and how it computes the same step
  train.val_every, train.log_every      when the run validates, checkpoints and logs
  data.num_workers, data.cache_dir      how fast and from where the token store is read
  train.devices, num_nodes, batch_size  only when train.global_batch_tokens fixes the tokens of a
                                        step (docs/SCALING.md); otherwise they change the step

model.vocab_size is not compared: pretrain fills it in from the tokenizer.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from pytorch_lightning.utilities.rank_zero import rank_zero_only

from glm.config import Config, load_config
from glm.errors import InputError
from glm.io.files import check_output
from glm.plots import CURVES_PNG
from glm.training.checkpoints import LAST, previous_checkpoint, resume_checkpoint

MAY_CHANGE = {
    "train.max_steps",
    "train.max_time",
    "train.accelerator",
    "train.precision",
    "train.strategy",
    "train.compile",
    "train.activation_checkpointing",
    "train.val_every",
    "train.log_every",
    "data.num_workers",
    "data.cache_dir",
}
STEP_SIZE = {"train.devices", "train.num_nodes", "train.batch_size"}  # fixed by train.global_batch_tokens, if set
DERIVED = {"model.vocab_size"}
UNFINISHED = ("config.yaml", "logs", CURVES_PNG, "checkpoints")  # what a run writes before its first checkpoint


def starting_checkpoint(run_dir: Path, resume: bool, say: Callable[[str], Any]) -> Path | None:
    """The checkpoint to resume from (None for a new run); a new run never overwrites one that has a checkpoint
    and clears what an earlier run without one left (global rank 0: one process removes)."""
    checkpoints = run_dir / "checkpoints"
    resume_from = resume_checkpoint(checkpoints) if resume else None
    if not resume and ((checkpoints / LAST).exists() or previous_checkpoint(checkpoints / LAST).exists()):
        raise InputError("a run already exists here; pass --resume to continue it or --out to start another", run_dir)
    check_output(run_dir, directory=True)  # fail before preparing data when the run cannot be written
    left = [run_dir / name for name in UNFINISHED if (run_dir / name).exists()]
    if not resume and left and rank_zero_only.rank == 0:
        for path in left:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        names = ", ".join(path.name for path in left)
        say(f"note: removed {names} of an earlier run here that stopped before its first checkpoint")
    return resume_from


def resume_command(inputs: str | Path | Sequence[str | Path], corpus: str | Path | None, run_dir: Path) -> str:
    """The command line that continues this run (the config is the run's own: config.yaml)."""
    paths = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    corpus_option = ["--corpus", str(corpus)] if corpus is not None else []
    return shlex.join(["glm", "pretrain", *map(str, paths), *corpus_option, "--out", str(run_dir), "--resume"])


def resumed_config(
    saved: Config, preset: str | None, overrides: dict[str, Any], run_dir: Path, say: Callable[[str], Any]
) -> Config:
    """The saved config with the options that may change on resume; an InputError for any other difference.

    `preset` (--config) and `overrides` (the options given, None for those not given) are what the
    command line asks for; a field that may change is changed by an option only, so a preset must
    agree with the saved run on every field.
    """
    changeable = MAY_CHANGE | (STEP_SIZE if saved.train.global_batch_tokens is not None else set())
    given = {key: value for key, value in overrides.items() if value is not None}
    resumed = saved.with_overrides({key: value for key, value in given.items() if key in changeable})
    requested = (load_config(preset) if preset else saved).with_overrides(given)
    was, now = _flat(resumed), _flat(requested)
    differences = [key for key in was if key not in DERIVED and was[key] != now[key]]
    if differences:
        sources = {key: _source(key, given, preset) for key in differences}
        asked = "; ".join(f"{key} {was[key]!r}, {sources[key]} {now[key]!r}" for key in differences)
        culprits = " and ".join(dict.fromkeys(source.split()[0] for source in sources.values()))
        raise InputError(
            f"--resume: the run has {asked}. A resumed run keeps its model, data and optimisation (config.yaml): "
            f"drop {culprits}, or start a new run with another --out",
            run_dir,
        )
    before = _flat(saved)
    for key in [key for key in before if before[key] != was[key]]:
        say(f"resuming with {key} {was[key]!r} (the run had {before[key]!r})")
    return resumed


def checked_for_resume(config: Config, run_dir: Path) -> Config:
    """`config` checked against the run's config.yaml as resumed_config checks options (from Python too;
    the command line's config already is), with the run's values where it leaves a field unset."""
    return resumed_config(load_config(run_dir / "config.yaml"), None, _flat(config), run_dir, lambda *_: None)


def _flat(config: Config) -> dict[str, Any]:
    """{"model.width": 64, ...}: every field of the config by its dotted name."""
    return {f"{section}.{key}": value for section, values in config.to_dict().items() for key, value in values.items()}


def _source(key: str, given: dict[str, Any], preset: str | None) -> str:
    """Who asked for another value of `key`: its option (--width asks for), else the preset."""
    if key not in given:
        return f"--config {preset} has"
    section, name = key.split(".")
    field = next(item for item in fields(getattr(Config(), section)) if item.name == name)
    return f"--{(field.metadata.get('flag') or name).replace('_', '-')} asks for"

"""Weights & Biases logger that never waits for a login, with the generator step as every panel's x-axis.

How a run of this lab maps onto W&B runs (the run id is the run folder's, kept in every checkpoint):

* a new run is the W&B run ``<run id>``;
* a resume online *rewinds* that W&B run to the checkpoint's generator step (``resume_from``), so the steps
  redone after an older checkpoint replace the abandoned ones instead of being logged twice;
* a resume that cannot rewind (offline, or a server that refuses) is a new W&B run ``<run id>-resume<k>``.
  Offline, wandb cannot continue a run: a second offline folder with the same id restarts ``_step`` at 0 and
  syncing it overwrites the first one's history on the server (wandb issues 3841 and 5865). One W&B run per
  resume keeps every point. Every segment is in the W&B group ``<run id>``, and each logs W&B's ``_step`` equal
  to the generator step, so the segments line up on one axis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.logger import _add_prefix
from lightning.pytorch.loggers import WandbLogger as _LightningWandbLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from .runs import import_class, logged_step

#: Every training curve is plotted against this logged value, the generator step (which the harness also
#: makes Lightning's global_step; W&B's own step would otherwise drift from it, Lightning issue 13382).
STEP_METRIC = "train/g_step"


def wandb_credentials_available() -> bool:
    """Whether ``wandb.init`` would find credentials without asking, by wandb's own lookup.

    The lookup wandb itself does before prompting: a key from ``wandb.login()`` in this process,
    ``WANDB_API_KEY``, ``WANDB_IDENTITY_TOKEN_FILE``, the ``.netrc`` entry for wandb's server (``NETRC`` or
    ``~/.netrc``), and ``api_key`` in wandb's settings files (``$WANDB_CONFIG_DIR/settings``,
    ``./wandb/settings``). ``prompt=False`` never asks and ``verify=False`` never touches the network.
    """
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    settings = wandb_setup.singleton().settings  # wandb reads its settings files once per process
    try:
        auth = wbauth.authenticate_session(host=settings.base_url, source="gan-lab", prompt=False,
                                           update_session=False)
    except AuthenticationError:  # a key exists but is malformed: go online and let wandb.init say why
        return True
    return auth is not None


def resume_segment_id(run_id: str, wandb_dir: str | Path) -> str:
    """``<run id>-resume<k>`` with the first ``k`` that no W&B run folder under ``wandb_dir`` uses yet."""
    taken = {p.name.removeprefix("run-").removesuffix(".wandb") for p in Path(wandb_dir).glob("*run-*/run-*.wandb")}
    k = 1
    while f"{run_id}-resume{k}" in taken:
        k += 1
    return f"{run_id}-resume{k}"


def wandb_run_args(run_id: str | None, *, rewind: bool, resume_step: int | None, wandb_dir: str | Path
                   ) -> dict[str, Any]:
    """The ``wandb.init`` arguments that place this fit in the run's W&B history (see the module docstring).

    ``resume_step`` is the checkpoint's generator step when this fit resumes the run ``run_id``, else None.
    """
    if run_id is None:
        return {}
    if resume_step is None:
        return {"id": run_id, "group": run_id, "resume": "allow"}
    if rewind:  # W&B keeps rows with _step <= resume_step and continues at resume_step + 1
        return {"id": run_id, "group": run_id, "resume": None, "resume_from": f"{run_id}?_step={resume_step}"}
    return {"id": resume_segment_id(run_id, wandb_dir), "group": run_id, "resume": "allow"}


class WandbLogger(_LightningWandbLogger):
    """Lightning's W&B logger, offline automatically when wandb finds no credentials (or ``WANDB_MODE=offline``).

    Offline runs are written under ``<save_dir>/wandb/offline-run-*``; ``wandb sync <save_dir>/wandb`` uploads
    every one not yet uploaded. The mode is passed to ``wandb.init`` rather than set in ``os.environ`` (as
    Lightning does), so an offline fit leaves a later fit in the same process (a notebook) online.
    """

    def __init__(
        self,
        project: str = "gan-lab",              # W&B project
        name: str | None = None,               # run name shown in the dashboard (main.py: the config's name)
        save_dir: str = ".",                   # where wandb writes its files (main.py: the run's folder)
        offline: bool | None = None,           # None: offline exactly when wandb finds no credentials
        log_model: bool | str = False,         # upload checkpoints as W&B artifacts (True: at the end, "all": each)
        id: str | None = None,                 # the run id (main.py: the run folder's); see the module docstring
        resume_step: int | None = None,        # generator step of the checkpoint this fit resumes (set by main.py)
        **kwargs: Any,
    ) -> None:
        mode = os.environ.get("WANDB_MODE", "")
        if offline is None:
            offline = mode in ("offline", "dryrun") or (mode != "online" and not wandb_credentials_available())
        if offline and log_model:
            rank_zero_info("W&B is offline: checkpoints are not uploaded as artifacts (log_model ignored).")
            log_model = False
        Path(save_dir).mkdir(parents=True, exist_ok=True)
        run_args = wandb_run_args(id, rewind=not offline, resume_step=resume_step,
                                  wandb_dir=Path(save_dir, "wandb"))
        if mode != "disabled":  # explicit, so neither Lightning's env var nor wandb's cached settings decide
            kwargs.setdefault("mode", "offline" if offline else "online")
        # offline=False: Lightning would otherwise set WANDB_MODE=dryrun for the whole process
        super().__init__(name=name, save_dir=save_dir, offline=False, project=project, log_model=log_model,
                         **{**run_args, **kwargs})
        if self._wandb_init.get("anonymous") is None:
            self._wandb_init.pop("anonymous")  # wandb 0.31 warns that the setting has no effect
        self._wandb_offline = offline
        self._run_id, self._resume_step = id, resume_step
        self._wandb_step: int | None = None  # the W&B _step of the rows being logged
        self._counts_generator_steps = False  # whether the module logs STEP_METRIC (every GAN of this lab)

    @property
    def offline(self) -> bool:
        return self._wandb_offline

    @property
    def experiment(self) -> Any:
        created = self._experiment is None
        try:
            run = super().experiment
        except Exception as err:
            from wandb.errors import Error as WandbError

            if "resume_from" not in self._wandb_init or not isinstance(err, WandbError):
                raise
            # Rewind is a W&B preview feature, and a run never uploaded cannot be rewound.
            self._wandb_init.update(wandb_run_args(self._run_id, rewind=False, resume_step=self._resume_step,
                                                   wandb_dir=Path(self.save_dir or ".", "wandb")))
            self._wandb_init.pop("resume_from")
            self._id = self._wandb_init["id"]  # Lightning's `version` before the run exists
            rank_zero_warn(f"W&B could not rewind run {self._run_id} to generator step {self._resume_step} "
                           f"({err}); logging this resume as the W&B run {self._wandb_init['id']} in the group "
                           f"{self._run_id} instead.")
            run = super().experiment
        if created and hasattr(run, "define_metric"):
            # Replaces Lightning's "*" -> trainer/global_step: the lab's panels share one named x-axis.
            run.define_metric(STEP_METRIC)
            run.define_metric("*", step_metric=STEP_METRIC, step_sync=True)
        return run

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        """Log one row with W&B's ``_step`` equal to the generator step (``train/g_step``, logged with every
        value of this lab), so a resume can rewind to a checkpoint's generator step and rows of several
        segments line up. Rows without it join the current generator step's row; modules that never log it
        (the digit classifier) use Lightning's step."""
        metrics = dict(_add_prefix(metrics, self._prefix, self.LOGGER_JOIN_CHAR))
        if STEP_METRIC in metrics:
            self._counts_generator_steps = True
            self._wandb_step = int(metrics[STEP_METRIC])
        elif not self._counts_generator_steps:
            self._wandb_step = step
        if step is not None:
            metrics["trainer/global_step"] = step
        self.experiment.log(metrics, step=self._wandb_step)

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            # Close the run so a later fit in the same process (tests, notebooks) starts its own run.
            self._experiment.finish(exit_code=0 if status == "success" else 1)
            self._experiment = None


def configure_wandb(cfg: Any, run_id: str, run_dir: str, resumed_from: str | None) -> None:
    """Point every W&B logger at the run: files in the run folder, the run folder's id, the config's name.

    The id is always the run's (a config.yaml saved by an earlier run must not log into that run). A resume
    (``resumed_from``: a checkpoint of this run) gives the lab's logger the checkpoint's generator step, where
    it rewinds the W&B run or starts the next segment (callbacks/wandb_logger.py).
    """
    logger = cfg.trainer.logger
    for spec in logger if isinstance(logger, list) else [logger]:
        if not (hasattr(spec, "class_path") and spec.class_path.endswith("WandbLogger")):
            continue
        args = spec.init_args
        args.save_dir = run_dir if args.get("save_dir") in (None, ".") else args.save_dir
        args.name = args.get("name") or cfg.name
        args.id = run_id
        if issubclass(import_class(spec.class_path) or object, WandbLogger):
            args.resume_step = logged_step(resumed_from) if resumed_from else None


def wandb_summary(logger: WandbLogger, run_id: str) -> list[str]:
    """Where the W&B run is and, offline, the one command that uploads every segment of the run."""
    wandb_dir = Path(logger.save_dir or ".", "wandb")
    where = f"run {logger.version} (group {run_id}) in {wandb_dir}"
    if not logger.offline:
        return [f"W&B:         {where}"]
    return [f"W&B (offline): {where}",
            f"  upload:      wandb sync {wandb_dir}   (every segment of this run not uploaded yet; one per resume)"]


"""Learning-rate schedules under the harness: stepped by generator step (or epoch), restored exactly on resume."""

import lightning as L
import pytest
import torch
from helpers import assert_same_counters, assert_same_training_state, last_checkpoint
from lightning.pytorch.callbacks import Callback

from gan_modules import WGANGP
from gan_modules.schedules import LinearDecay

# WGAN-GP on the ring at n_critic 5: 1,280 samples in critic batches of 64 are 4 generator steps an epoch, 20
# discriminator steps; a schedule counted in optimizer steps or D steps would run 5 or 6 times too fast.
ARGS = ["--data.init_args.num_samples", "1280", "--data.init_args.batch_size", "64",
        "--checkpoint.every_n_train_steps", "0", "--trainer.callbacks+=test_schedules.RecordLR"]
DECAY = ["--model.init_args.g_scheduler", "gan_modules.schedules.LinearDecay",
         "--model.init_args.g_scheduler.total", "8", "--model.init_args.g_scheduler.decay_start", "4",
         "--model.init_args.d_scheduler", "torch.optim.lr_scheduler.StepLR",
         "--model.init_args.d_scheduler.step_size", "3", "--model.init_args.d_scheduler.gamma", "0.5"]
LR = 5e-4  # wgan_gp_ring.yaml's rate for both sides (before its decay starts at 2,500 generator steps)


class RecordLR(Callback):
    """Both sides' learning rates at the start of every generator step (tests/ is on sys.path for class_path)."""

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx: int) -> None:
        g_opt, d_opt = pl_module.optimizers()
        pl_module.recorded_lr = [*getattr(pl_module, "recorded_lr", []),
                                 (pl_module.g_steps, g_opt.param_groups[0]["lr"], d_opt.param_groups[0]["lr"])]


def assert_rates(recorded: list, expected: list) -> None:
    torch.testing.assert_close(torch.tensor(recorded, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64))


def test_linear_decay_values_on_paper():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    schedule = LinearDecay(opt, total=4, decay_start=2)
    rates = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        opt.step()
        schedule.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates == [2.0, 2.0, 2.0, 1.0, 0.0, 0.0]


def test_learning_rate_follows_the_schedule_by_generator_step(run_fit):
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "10", "--trainer.log_every_n_steps", "5", *ARGS, *DECAY)
    # the rate generator step t trains with: LinearDecay(8, 4) for G, halved every 3 steps for D
    expected = [(t, LR * (1 - min(max(t - 4, 0), 4) / 4), LR * 0.5 ** (t // 3)) for t in range(10)]
    assert_rates(cli.model.recorded_lr, expected)
    assert cli.model.d_steps == 50  # five critic steps each, but the schedule moved once per generator step
    # logged after step 10: G's rate has reached zero, D's was halved three times
    assert cli.model.latest_metrics["train/lr_g"] == pytest.approx(0.0)
    assert cli.model.latest_metrics["train/lr_d"] == pytest.approx(LR / 8)


def test_epoch_schedule_steps_once_per_epoch(run_fit):
    cli = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "10", *ARGS, *DECAY,
                  "--model.init_args.scheduler_interval", "epoch")
    # 4 generator steps an epoch: epoch e trains at the rate after e scheduler steps
    expected = [(t, LR * (1 - min(max(t // 4 - 4, 0), 4) / 4), LR * 0.5 ** (t // 4 // 3)) for t in range(10)]
    assert_rates(cli.model.recorded_lr, expected)


@pytest.mark.parametrize(("interval", "stop_at"), [("step", 6), ("epoch", 8)], ids=["step-mid-epoch", "epoch-boundary"])
def test_resumed_schedule_equals_uninterrupted_one(run_fit, interval, stop_at):
    args = [*ARGS, *DECAY, "--model.init_args.scheduler_interval", interval]
    if interval == "epoch":  # short epochs, so the stop lands after several schedule steps
        args += ["--model.init_args.g_scheduler.total", "2", "--model.init_args.g_scheduler.decay_start", "1",
                 "--model.init_args.d_scheduler.step_size", "1"]
    full = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "12", *args)
    first = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", str(stop_at), *args)
    resumed = run_fit("wgan_gp_ring.yaml", "--trainer.max_steps", "12", *args,
                      "--ckpt_path", f"{first.run_dir}/checkpoints/last.ckpt")
    assert resumed.model.recorded_lr == full.model.recorded_lr[stop_at:]
    a, b = last_checkpoint(full), last_checkpoint(resumed)
    assert a["lr_schedulers"] == b["lr_schedulers"] and len(a["lr_schedulers"]) == 2
    assert_same_training_state(a, b)
    assert_same_counters(a, b)


def test_schedule_from_python_and_bad_interval():
    module = WGANGP(data_shape=(2,), latent_dim=2, g_scheduler=lambda opt: LinearDecay(opt, total=10))
    g_side, d_side = module.configure_optimizers()
    assert isinstance(g_side["lr_scheduler"]["scheduler"], LinearDecay) and "lr_scheduler" not in d_side
    with pytest.raises(ValueError, match=r"model\.scheduler_interval='batch'"):
        WGANGP(data_shape=(2,), scheduler_interval="batch")

"""Callback metrics reach trainer.callback_metrics, so Lightning's ModelCheckpoint(monitor=...) keeps the best."""

from pathlib import Path

from helpers import CONFIGS


def test_best_fid_checkpoint_is_kept(run_fit, tiny_mnist, digit_classifier, tmp_path):
    fid = ["--trainer.callbacks+=callbacks.FID", "--trainer.callbacks.every_n_steps=2",
           "--trainer.callbacks.feature=classifier", f"--trainer.callbacks.weights_path={digit_classifier}",
           "--trainer.callbacks.num_samples=40", "--trainer.callbacks.kid=false",
           f"--trainer.callbacks.cache_dir={tmp_path / 'fid'}", "--trainer.callbacks+=helpers.RecordMetric"]
    cli = run_fit("dcgan_mnist.yaml", "--config", str(CONFIGS / "debug" / "tiny_mnist.yaml"),
                  "--data.init_args.data_dir", str(tiny_mnist), "--trainer.max_steps", "8", "--trainer.callbacks",
                  "[]", *fid, "--checkpoint.monitor", "val/fid", "--checkpoint.mode", "min",
                  "--checkpoint.save_top_k", "1", "--checkpoint.every_n_train_steps", "2",
                  "--checkpoint.filename", "{step}")
    (record,) = [c for c in cli.trainer.callbacks if type(c).__name__ == "RecordMetric"]
    assert sorted(record.values) == [2, 4, 6, 8], record.values
    best_step = min(record.values, key=record.values.get)
    kept = sorted(p.name for p in Path(cli.run_dir, "checkpoints").glob("step=*.ckpt"))
    assert kept == [f"step={best_step}.ckpt"]
    assert float(cli.trainer.checkpoint_callback.best_model_score) == min(record.values.values())

"""`main.py sample`: counts checked, each export replaces its folder whole, `--ckpt_path last` as for fit."""

import re
from pathlib import Path

import pytest

from gan_modules import GAN
from gan_modules.sampling import EXPORT_MARKER, export_samples
from main import cli_main

FAST = ["--trainer.max_steps", "2", "--data.init_args.num_samples", "1024"]  # 2 generator steps (n_critic 1)


@pytest.fixture
def ring_run(run_fit) -> Path:
    return Path(run_fit("gan_ring.yaml", *FAST).run_dir)


def sample(*args: str) -> list[Path]:
    return cli_main(["sample", *args])


def test_ckpt_path_last_finds_the_newest_run_of_the_config(ring_run, tmp_path):
    written = sample("--ckpt_path", "last", "--config", "configs/gan_ring.yaml", "--runs_dir", str(tmp_path / "runs"),
                     "--num_samples", "5")
    assert written == [ring_run / "export" / "last" / "samples.csv"]
    assert len(written[0].read_text().splitlines()) == 5
    by_name = sample("--ckpt_path", "last", "--name", "gan_ring", "--runs_dir", str(tmp_path / "runs"))
    assert by_name == written


@pytest.mark.parametrize("count", ["0", "-3"])
def test_a_count_below_one_is_refused_and_keeps_the_earlier_export(ring_run, capsys, count):
    ckpt = str(ring_run / "checkpoints" / "last.ckpt")
    [csv] = sample("--ckpt_path", ckpt, "--num_samples", "4")
    before = csv.read_bytes()
    with pytest.raises(SystemExit):
        sample("--ckpt_path", ckpt, "--num_samples", count)
    assert f"--num_samples {count}: must be >= 1" in capsys.readouterr().err
    assert csv.read_bytes() == before
    with pytest.raises(ValueError, match="num_samples=0: must be an integer >= 1"):
        export_samples(GAN(data_shape=(2,)), csv.parent, 0)


def test_truncated_checkpoint_is_named(ring_run, tmp_path, capsys):
    data = (ring_run / "checkpoints" / "last.ckpt").read_bytes()
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(SystemExit) as stop:  # a usage error: one line, exit code 2
        sample("--ckpt_path", str(broken))
    assert stop.value.code == 2 and re.search(r"broken.ckpt cannot be read .* truncated", capsys.readouterr().err)


def test_a_second_export_replaces_the_first_whole(tmp_path):
    module = GAN(data_shape=(1, 8, 8), latent_dim=4)
    out = tmp_path / "export"
    export_samples(module, out, num_samples=6, interpolation_steps=3)
    written = export_samples(module, out, num_samples=2, interpolation_steps=3)
    names = ["sample_00000.png", "sample_00001.png", "grid.png", "interpolation_linear.png", "interpolation_slerp.png"]
    assert written == [out / n for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, EXPORT_MARKER])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no staging folder left behind


def test_a_folder_that_is_not_an_export_is_refused_and_left_alone(tmp_path):
    module = GAN(data_shape=(2,), latent_dim=2)
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "thesis.tex").write_text("months of work")
    with pytest.raises(FileExistsError, match="not an earlier sample export"):
        export_samples(module, mine, num_samples=3)
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export_samples(module, empty, num_samples=3) == [empty / "samples.csv"]  # an empty folder is fine


def test_a_failed_export_leaves_the_earlier_one(tmp_path, monkeypatch):
    module = GAN(data_shape=(1, 8, 8), latent_dim=4)
    out = tmp_path / "export"
    export_samples(module, out, num_samples=3, interpolation_steps=3)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    draws = iter([module.sample])  # the samples are drawn, then the interpolation strips fail

    def sample_once(**kwargs):
        return next(draws, None)(**kwargs)

    monkeypatch.setattr(module, "sample", sample_once)
    with pytest.raises(TypeError):
        export_samples(module, out, num_samples=3, seed=1, interpolation_steps=3)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]

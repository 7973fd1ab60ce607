"""Translate image files with a trained CycleGAN (``python main.py translate``, parsed in main.py)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import v2 as T

from .cyclegan import DIRECTIONS, CycleGAN

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Marks a folder as translate's output, whose files a later translation may overwrite.
OUTPUT_MARKER = ".gan_lab_translations"


def direction_name(direction: str) -> str:
    """``AtoB``/``BtoA`` in any letter case, as the model spells it; an error naming the choices otherwise."""
    for name in DIRECTIONS:
        if direction.lower() == name.lower():
            return name
    raise ValueError(f"--direction {direction}: use AtoB (G: domain A to B) or BtoA (F: B to A)")


def load_cyclegan(ckpt_path: str | Path, map_location: str = "cpu") -> CycleGAN:
    """A CycleGAN from its checkpoint, in eval mode."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    hparams = torch.load(path, map_location="cpu", weights_only=True).get("hyper_parameters", {})
    if not str(hparams.get("_class_path", "")).endswith("CycleGAN"):
        raise TypeError(f"{path} holds a {hparams.get('_class_path', 'model')}, not a CycleGAN: translate needs "
                        "two generators (python main.py sample writes samples of a GAN).")
    return CycleGAN.load_from_checkpoint(path, map_location=map_location).eval()


def input_files(source: str | Path) -> list[Path]:
    """The image, or every image directly in the folder (sorted; not its subfolders); an error naming ``source``
    when there is none."""
    path = Path(source)
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS
                                                  ) if path.is_dir() else []
    if not files:
        raise FileNotFoundError(f"--input {source}: " + ("no images (" + "/".join(IMAGE_EXTENSIONS) + ") in it"
                                                         if path.is_dir() else "no such file or folder"))
    return files


def check_output(files: list[Path], output: str | Path) -> Path:
    """The output folder, refused when writing there would overwrite an input image or a file that an earlier
    translation did not write: a new or empty folder, or an earlier output (it holds ``OUTPUT_MARKER``)."""
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--output {out}: is a file; give a folder (created if missing).")
    sources = {f.resolve() for f in files}
    clash = [f.name for f in files if (out / f.name).resolve() in sources]
    if clash:
        raise FileExistsError(f"--output {out}: would overwrite the input image(s) {', '.join(clash[:3])}; give "
                              "another folder.")
    if out.is_dir() and any(out.iterdir()) and not (out / OUTPUT_MARKER).is_file():
        raise FileExistsError(f"--output {out}: holds files that translate did not write; they are left alone. "
                              "Give a new or empty folder (an earlier translate output may be reused).")
    return out


@torch.no_grad()
def translate_files(module: CycleGAN, source: str | Path, direction: str, output: str | Path,
                    batch_size: int = 16) -> list[Path]:
    """Write ``direction``'s translation of every input image to ``output`` under the input's own file name.

    Each image is resized to the size the model was trained on (its ``data_shape``), as the paper tests at its
    crop size; the result has that size.  A file that cannot be read as an image is named and skipped.
    """
    direction = direction_name(direction)
    channels, height, width = module.data_shape
    to_tensor = T.Compose([T.PILToTensor(), T.Resize((height, width), antialias=True)])
    files = input_files(source)
    out = check_output(files, output)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text("written by `python main.py translate`; a later translation may overwrite "
                                     "files here\n")
    written = []
    for start in range(0, len(files), batch_size):
        chunk, images = [], []
        for f in files[start : start + batch_size]:
            try:
                with Image.open(f) as img:
                    images.append(to_tensor(img.convert("L" if channels == 1 else "RGB")))
                chunk.append(f)
            except (UnidentifiedImageError, OSError) as err:
                warnings.warn(f"skipped {f}: not a readable image ({err})", stacklevel=1)
        if not chunk:
            continue
        x = torch.stack(images).float().div(127.5).sub(1.0)
        y = module.translate(x, direction).float().cpu().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
        for f, image in zip(chunk, y, strict=True):
            array = image.permute(1, 2, 0).squeeze(-1).numpy()
            Image.fromarray(array).save(out / f.name)
            written.append(out / f.name)
    return written


__all__ = ["OUTPUT_MARKER", "check_output", "direction_name", "input_files", "load_cyclegan", "translate_files"]

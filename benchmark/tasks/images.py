"""Image classification as token sequences (Lu et al. 2021): MNIST, CIFAR-10, CIFAR-10 LRA, and digits.

An image becomes a sequence of non-overlapping p×p patches, each flattened (row-major, channels
last) into one token. Hub tasks read `<split>.parquet` files in the Hub's columns (an image column
and `label`), written by `prepare` from the Hub or copied from a local `data_dir`. `digits` is
scikit-learn's bundled 8×8 set: the offline stand-in for MNIST, split into train / held-out by
the seed.

Sample: inputs (tokens, p·p·channels) float, normalised; labels () long in 0–9.
"""
from __future__ import annotations

import functools
import math
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch.utils.data import Dataset

from benchmark.errors import ConfigError
from benchmark.spec import TaskSettings
from benchmark.tasks.base import TaskData
from benchmark.tasks.fpt import COMMON, FPTTask, Layout, subset

GRAY = (0.2989, 0.5870, 0.1140)  # ITU-R 601 luma, as tf.image.rgb_to_grayscale (LRA's preprocessing)


def patches(x: torch.Tensor, p: int) -> torch.Tensor:
    """(H, W, C) → (H/p · W/p, p·p·C): non-overlapping patches in row-major order."""
    h, w, c = x.shape
    return x.reshape(h // p, p, w // p, p, c).permute(0, 2, 1, 3, 4).reshape((h // p) * (w // p), p * p * c)


def augment(x: torch.Tensor, g: torch.Generator, mode: str = "bilinear") -> torch.Tensor:
    """The reference code's CIFAR-10 augmentation on a (C, H, W) image: random crop with 4 pixels of zero
    padding, horizontal flip w.p. 0.5, rotation by up to ±20° (zero fill), interpolated by `mode` (torchvision's
    RandomRotation, which the reference uses, defaults to nearest)."""
    c, h, w = x.shape
    dy, dx = torch.randint(0, 9, (2,), generator=g).tolist()
    x = torch.nn.functional.pad(x, (4, 4, 4, 4))[:, dy:dy + h, dx:dx + w]
    if torch.rand((), generator=g) < 0.5:
        x = x.flip(-1)
    angle = math.radians(float(torch.empty(()).uniform_(-20, 20, generator=g)))
    cos, sin = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)
    grid = torch.nn.functional.affine_grid(theta[None], [1, c, h, w], align_corners=False)
    return torch.nn.functional.grid_sample(x[None], grid, mode=mode, align_corners=False)[0]


class ImageSet(Dataset):
    """uint8 images (N, H, W, C) → normalised patch sequences, augmented when `g` is given."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, patch: int, mean: tuple[float, ...],
                 std: tuple[float, ...], gray: bool = False, g: torch.Generator | None = None,
                 mode: str = "bilinear") -> None:
        self.images, self.labels, self.patch, self.gray, self.g, self.mode = images, labels, patch, gray, g, mode
        self.mean, self.std = torch.tensor(mean), torch.tensor(std)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x = self.images[i].float() / 255
        if self.g is not None:
            x = augment(x.permute(2, 0, 1), self.g, self.mode).permute(1, 2, 0)
        if self.gray:
            x = (x * torch.tensor(GRAY)).sum(-1, keepdim=True)
        x = (x - self.mean) / self.std
        return {"inputs": patches(x, self.patch), "labels": self.labels[i]}


class ImageTask(FPTTask):
    """Shared plumbing: patches, normalisation, optional augmentation, train/eval subsets."""

    side: ClassVar[int]
    channels: ClassVar[int]
    mean: ClassVar[tuple[float, ...]]
    std: ClassVar[tuple[float, ...]]
    gray: ClassVar[bool] = False
    rotation: ClassVar[str] = "bilinear"  # how `augment` interpolates its rotation
    options = {**COMMON, "patch": 4, "train_size": None, "eval_size": None, "augment": False}

    def layout(self, opts: dict[str, Any]) -> Layout:
        p, c = opts["patch"], 1 if self.gray else self.channels
        return Layout(p * p * c, 1, 1, 10)

    def positions_used(self, opts: dict[str, Any]) -> int:
        return (self.side // opts["patch"]) ** 2

    def protocol(self, settings: TaskSettings) -> dict[str, Any]:
        aug = settings.options["augment"]
        return {**super().protocol(settings),
                "augmentation": (f"training images: random crop with 4-pixel zero padding, horizontal flip, rotation "
                                 f"up to ±20° ({self.rotation} interpolation)" if aug else "none")}

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        p = {**self.options, **settings.options}["patch"]
        if self.side % p:
            raise ConfigError(f"{where}.options.patch: {p} does not divide the {self.side}-pixel side")

    def arrays(self, settings: TaskSettings, split: str, data_path: Path | None,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(uint8 images N×H×W×C, labels N) of one split ("train" or "eval")."""
        raise NotImplementedError

    def data(self, settings: TaskSettings, seed: int, data_path: Path | None) -> TaskData:
        opts = settings.options
        sets = {}
        for split in ("train", "eval"):
            images, labels = self.arrays(settings, split, data_path, seed)
            keep = subset(len(labels), opts[f"{split}_size"], seed)
            g = torch.Generator().manual_seed(seed) if split == "train" and opts["augment"] else None
            sets[split] = ImageSet(images[keep], labels[keep], opts["patch"], self.mean, self.std, self.gray, g,
                                   self.rotation)
        return TaskData(sets["train"], sets["eval"], eval_name=self.eval_name)

    eval_name: ClassVar[str] = "test"


class HubImageTask(ImageTask):
    """An image dataset from the Hub (or a local copy in its schema), stored as `<split>.parquet`."""

    needs_data = True
    hub_id: ClassVar[str]
    image_column: ClassVar[str]
    splits: ClassVar[dict[str, str]] = {"train": "train", "eval": "test"}

    def check(self, settings: TaskSettings, where: str) -> None:
        super().check(settings, where)
        source = settings.data_dir
        if source is not None:
            missing = [f"{s}.parquet" for s in self.splits.values() if not (Path(source) / f"{s}.parquet").is_file()]
            if missing:
                raise ConfigError(f"{where}.data_dir: {source} lacks {', '.join(missing)} (a local copy of the "
                                  f"Hub's {self.hub_id} in parquet, columns {self.image_column}, label)")

    def fixture(self, folder: Path, n: int = 12) -> Path:
        """Random images in the Hub's schema (image column + ClassLabel), as `<split>.parquet`."""
        import datasets
        from PIL import Image

        rng = np.random.default_rng(0)
        folder.mkdir(parents=True, exist_ok=True)
        shape, mode = ((self.side, self.side, 3), "RGB") if self.channels == 3 else ((self.side, self.side), "L")
        features = datasets.Features({self.image_column: datasets.Image(),
                                      "label": datasets.ClassLabel(num_classes=10)})
        for s in self.splits.values():
            images = [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]
            ds = datasets.Dataset.from_dict({self.image_column: images, "label": [i % 10 for i in range(n)]},
                                            features=features)
            ds.to_parquet(str(folder / f"{s}.parquet"))
        return folder

    def prepare(self, settings: TaskSettings, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        source = settings.data_dir
        if source is not None:
            for s in self.splits.values():
                shutil.copyfile(Path(source) / f"{s}.parquet", out_dir / f"{s}.parquet")
            return
        import datasets

        ds = datasets.load_dataset(self.hub_id)
        for s in self.splits.values():
            ds[s].to_parquet(str(out_dir / f"{s}.parquet"))

    def arrays(self, settings: TaskSettings, split: str, data_path: Path | None,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        import datasets

        assert data_path is not None, f"task {self.name} reads its prepared data folder"
        ds = datasets.Dataset.from_parquet(str(data_path / f"{self.splits[split]}.parquet"))
        images = np.stack([np.asarray(im.convert("RGB" if self.channels == 3 else "L"))
                           for im in ds[self.image_column]])
        if images.ndim == 3:
            images = images[..., None]
        return torch.from_numpy(images), torch.tensor(ds["label"], dtype=torch.long)


class MNIST(HubImageTask):
    """28×28 digits; 4×4 patches → 49 tokens of 16."""

    name = "mnist"
    hub_id = "ylecun/mnist"
    image_column = "image"
    side, channels, mean, std = 28, 1, (0.1307,), (0.3081,)


class CIFAR10(HubImageTask):
    """32×32 RGB; 4×4 patches → 64 tokens of 48; the reference code's augmentation on by default."""

    name = "cifar10"
    hub_id = "uoft-cs/cifar10"
    image_column = "img"
    side, channels = 32, 3
    mean, std = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    options = {**HubImageTask.options, "augment": True}


class CIFAR10LRA(CIFAR10):
    """LRA's image task: grayscale, one pixel a token → 1024 tokens of 1; no augmentation (LRA's protocol, the
    default). `augment: true` is the reference code's (kzl/universal-computation, cifar10_gray.py): grayscale, then
    random crop with 4 pixels of zero padding, horizontal flip w.p. 0.5 and rotation by up to ±20° with nearest
    interpolation, on training images only (gray conversion is per pixel and linear, so it commutes with these).
    The reference normalises with mean 0.5, std 0.5; ours uses the data's own statistics either way."""

    name = "cifar10-lra"
    # 3: `augment: true` rotates with nearest interpolation, as the reference (before: bilinear), on top of every FPT
    # task's version 2 (the unread token table frozen)
    version = "3"
    gray = True
    rotation = "nearest"
    mean, std = (0.4809,), (0.2391,)
    options = {**HubImageTask.options, "patch": 1}
    # 2×2 patches (256 tokens) fit tiny-gpt2's 512 positions; the task's own 1,024 one-pixel tokens do not
    smoke = {**HubImageTask.smoke, "options": {**HubImageTask.smoke["options"], "patch": 2}}


class Digits(ImageTask):
    """scikit-learn's bundled 8×8 digits (1,797 images, 16 grey levels); 2×2 patches → 16 tokens of 4.
    Offline: a seeded `eval_fraction` of the images is held out."""

    name = "digits"
    side, channels, mean, std = 8, 1, (0.3,), (0.37,)
    options = {**ImageTask.options, "patch": 2, "eval_fraction": 0.2}
    eval_name = "held-out"

    def arrays(self, settings: TaskSettings, split: str, data_path: Path | None,
               seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = _digits()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        n_eval = round(settings.options["eval_fraction"] * len(labels))
        keep = order[:n_eval] if split == "eval" else order[n_eval:]
        return images[keep], labels[keep]


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 images (as 8-bit grey) and labels, read once per process: a run asks for its train and eval split.

    Read from the file scikit-learn ships (`sklearn/datasets/data/digits.csv.gz`: 64 pixels then the label per row),
    as its `load_digits` does, but without importing `sklearn.datasets` (and scipy behind it): ~0.4 s of every
    digits job. `tests/test_fpt_tasks.py` checks the arrays equal `load_digits()`'s."""
    import gzip
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("task 'digits' reads scikit-learn's bundled digits: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    images = data[:, :-1].reshape(-1, 8, 8)
    images = torch.from_numpy((images * 255 / 16).round().astype(np.uint8))[..., None]
    return images, torch.from_numpy(data[:, -1].astype(int)).long()

"""LightningDataModule: processed features -> normalised windows and labels for train / val / test.

All rows live in one float32 tensor `[rows, features]`. A batch is gathered in one indexing op from the
anchor rows (`x[anchor - C + 1 .. anchor]`), so there is no per-sample Python or pandas work and no
copy per window. Normalisation statistics come from the train segment's rows only.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    RandomSampler,
    SequentialSampler,
)

from patchtst_hpo.data import processed
from patchtst_hpo.data.labels import threshold_labels
from patchtst_hpo.data.splits import Segment, train_val_test
from patchtst_hpo.errors import ConfigError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


class WindowDataset(Dataset):
    """Windows ending at `anchors`; indexed with a *list* of positions, it returns a whole batch."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, anchors: np.ndarray, context_length: int):
        self.x, self.y = x, y
        self.anchors = torch.as_tensor(anchors, dtype=torch.long)
        self.offsets = torch.arange(-context_length + 1, 1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.anchors)

    def __getitem__(self, idx) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.anchors[idx]
        return self.x[t.unsqueeze(-1) + self.offsets], self.y[t]


class EpochBatchSampler(BatchSampler):
    """A BatchSampler that passes `set_epoch` on, so Lightning reshuffles a DistributedSampler inside it."""

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


class WindowDataModule(L.LightningDataModule):
    """Built from the composed `data` and `task` configs; `setup()` is idempotent and cheap to repeat."""

    def __init__(self, data: DictConfig, task: DictConfig, seed: int):
        super().__init__()
        self.data_cfg, self.task_cfg, self.seed = data, task, int(seed)
        self.datasets: dict[str, WindowDataset] = {}
        self.info: dict[str, Any] = {}

    @property
    def num_features(self) -> int:
        return int(self.data_cfg.num_features)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        d, task = self.data_cfg, self.task_cfg
        df, entry = processed.load(d.root, d.ohlcv, d.tier, d.vix, d.version)
        names = entry["features"]
        if len(names) != self.num_features:
            raise ConfigError(
                f"data.num_features={self.num_features} but {entry['id']} has {len(names)} features"
            )
        ctx, h = int(d.context_length), int(task.horizon)
        segs = train_val_test(pd.DatetimeIndex(df["date"]), d.split, ctx, h)
        labels = threshold_labels(
            df["high"].to_numpy(), df["close"].to_numpy(), h, float(task.threshold), task.label
        )
        feats = df[names].to_numpy(dtype=np.float64)
        train_rows = feats[segs[0].start : segs[0].stop]
        if d.normalize == "zscore":
            mean, std = train_rows.mean(axis=0), train_rows.std(axis=0)
            std[std == 0] = 1.0
            feats = (feats - mean) / std
        elif d.normalize != "none":
            raise ConfigError(f"data.normalize={d.normalize!r}: use zscore or none")
        anchors = {s.name: s.anchors(ctx, h) for s in segs}
        if d.fit_on == "train_val":  # final confirmation: fit on train+val, the test period stays held out
            anchors["train"] = Segment("train_val", segs[0].start, segs[1].stop).anchors(ctx, h)
        elif d.fit_on != "train":
            raise ConfigError(f"data.fit_on={d.fit_on!r}: use train or train_val")
        if d.shuffle_labels:
            rng = np.random.default_rng(self.seed)
            for a in anchors.values():  # permute within each split: a sanity check for leakage
                labels[a] = rng.permutation(labels[a])
        x = torch.from_numpy(feats.astype(np.float32))
        multiclass = int(task.num_classes) > 1
        y = torch.from_numpy(np.nan_to_num(labels, nan=0.0)).to(torch.long if multiclass else torch.float32)
        self.datasets = {name: WindowDataset(x, y, a, ctx) for name, a in anchors.items()}
        self.info = self._describe(entry, df, segs, anchors, labels)
        log.info(
            "data %s v%s: %s",
            entry["id"],
            entry["version"],
            ", ".join(
                f"{k} {v['samples']} samples ({v['positive_rate']:.1%} positive)"
                for k, v in self.info["splits"].items()
            ),
        )

    def _describe(self, entry, df, segs: list[Segment], anchors, labels) -> dict[str, Any]:
        splits = {}
        for s in segs:
            a = anchors[s.name]
            splits[s.name] = {
                "samples": len(a),
                "positive_rate": float(labels[a].mean()),
                "first_date": df["date"].iloc[a[0]].date().isoformat(),
                "last_date": df["date"].iloc[a[-1]].date().isoformat(),
                "rows": [s.start, s.stop],
            }
        return {
            "id": entry["id"],
            "version": entry["version"],
            "sha256": entry["sha256"],
            "path": entry["path"],
            "inputs": entry["inputs"],
            "tier": entry["tier"],
            "num_features": len(entry["features"]),
            "rows": entry["rows"],
            "splits": splits,
        }

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.datasets[split]
        if train:
            if (
                torch.distributed.is_available() and torch.distributed.is_initialized()
            ):  # DDP: a shard per rank
                inner = DistributedSampler(ds, shuffle=True, seed=self.seed)
            else:
                inner = RandomSampler(ds, generator=torch.Generator().manual_seed(self.seed))
            sampler = EpochBatchSampler(inner, int(self.data_cfg.batch_size), drop_last=False)
        else:
            sampler = BatchSampler(SequentialSampler(ds), int(self.data_cfg.eval_batch_size), drop_last=False)
        return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=int(self.data_cfg.num_workers))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

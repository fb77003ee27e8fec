"""LightningDataModule: processed features -> normalised windows and labels for train / val / test.

All rows live in one float32 tensor `[rows, features]`. A batch is gathered in one indexing op from the
anchor rows (`x[anchor - C + 1 .. anchor]`), so there is no per-sample Python or pandas work and no
copy per window. Normalisation statistics come from the train segment's rows only.

A panel (`data.panel`) is the same array with the symbols' rows stacked in (symbol, date) order; anchors
are taken per symbol, so no window or label ever spans two symbols, and a batch mixes symbols.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig
from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from patchtst_hpo.data import panel, processed
from patchtst_hpo.data.labels import threshold_labels
from patchtst_hpo.data.splits import Segment, calendar_bounds, symbol_segments, train_val_test
from patchtst_hpo.errors import ConfigError, DataError

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def _symbol_blocks(symbols: pd.Series) -> list[tuple[str, int, int]]:
    """(symbol, first row, stop row) of each contiguous symbol block of a (symbol, date)-sorted panel."""
    codes, uniques = pd.factorize(symbols, sort=False)
    cuts = [0, *(np.flatnonzero(np.diff(codes)) + 1).tolist(), len(codes)]
    if len(cuts) - 1 != len(uniques):
        raise DataError("processed panel rows are not grouped by symbol; delete it to rebuild")
    return [(str(uniques[codes[a]]), a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]


def _stats(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = rows.mean(axis=0), rows.std(axis=0)
    std[std == 0] = 1.0
    return mean, std


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


class ShardedShuffle(Sampler[int]):
    """Epoch e's shuffle of `n` positions, seeded by (seed, e), padded by wrapping to a multiple of `world`;
    rank r takes positions r, r + world, ... So W ranks with batch B/W make the same global batches as one
    process with batch B. The order depends on the epoch only: a resumed run shuffles as an uninterrupted one."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.n, self.seed, self.rank, self.world, self.epoch = int(n), int(seed), rank, world, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return -(-self.n // self.world)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g)
        pad = len(self) * self.world - self.n
        if pad:
            perm = torch.cat([perm, perm[:pad]])
        return iter(perm[self.rank :: self.world].tolist())


class EpochBatchSampler(BatchSampler):
    """A BatchSampler that passes `set_epoch` on, so Lightning reshuffles the sampler inside it."""

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
        fraction = float(d.train_fraction)
        if not 0 < fraction <= 1:
            raise ConfigError(
                f"data.train_fraction={fraction}: must be in (0, 1] (1.0 = all training windows)"
            )
        if d.normalize_by not in ("symbol", "pooled"):
            raise ConfigError(f"data.normalize_by={d.normalize_by!r}: use symbol or pooled")
        df, entry, blocks = self._load()
        ctx, h = int(d.context_length), int(task.horizon)
        dates = pd.DatetimeIndex(df["date"])
        segs = self._segments(dates, blocks, ctx, h)
        labels = np.concatenate(
            [
                threshold_labels(
                    df["high"].to_numpy()[a:b],
                    df["close"].to_numpy()[a:b],
                    h,
                    float(task.threshold),
                    task.label,
                )
                for _, a, b in blocks
            ]
        )
        feats = self._normalise(df[entry["features"]].to_numpy(dtype=np.float64, copy=True), segs)
        anchors, all_train = self._anchors(segs, ctx, h, entry, fraction)
        _check_both_classes(labels, anchors, task)
        self.datasets = self._datasets(feats, labels, anchors, ctx)
        self.info = self._describe(entry, dates, segs, blocks, anchors, labels, all_train)
        symbols = df["symbol"].to_numpy() if "symbol" in df else np.full(len(df), str(d.ohlcv), dtype=object)
        self.rows = pd.DataFrame(
            {
                "date": dates,
                "symbol": symbols,
                "close": df["close"].to_numpy(dtype=np.float64),
                "label": labels,
            }
        )
        log.info(
            "data %s v%s: %s",
            entry["id"],
            entry["version"],
            ", ".join(
                f"{k} {v['samples']} samples ({v['positive_rate']:.1%} positive)"
                for k, v in self.info["splits"].items()
            ),
        )

    def _load(self) -> tuple[pd.DataFrame, dict, list[tuple[str, int, int]]]:
        """The processed rows (a panel or one series), its manifest entry and each symbol's row block."""
        d = self.data_cfg
        if d.get("panel"):
            df, entry = panel.load(d.root, d.panel, d.tier, d.version)
            blocks = _symbol_blocks(df["symbol"])
        else:
            df, entry = processed.load(d.root, d.ohlcv, d.tier, d.vix, d.version)
            blocks = [(str(d.ohlcv), 0, len(df))]
        if len(entry["features"]) != self.num_features:
            raise ConfigError(
                f"data.num_features={self.num_features} but {entry['id']} has {len(entry['features'])} features"
            )
        return df, entry, blocks

    def _anchors(
        self, segs, ctx: int, h: int, entry: dict, fraction: float
    ) -> tuple[dict[str, np.ndarray], int]:
        """Anchor rows of each split (train+val for fit_on=train_val; a seeded subset of train for a
        fraction < 1), and how many training windows there were before the subset."""
        fit_on = self.data_cfg.fit_on
        anchors = {
            name: np.concatenate([s[i].anchors(ctx, h) for s in segs]) for i, name in enumerate(SPLITS)
        }
        if fit_on == "train_val":  # final confirmation: fit on train+val, the test period stays held out
            anchors["train"] = np.concatenate(
                [Segment("train_val", s[0].start, s[1].stop).anchors(ctx, h) for s in segs]
            )
        elif fit_on != "train":
            raise ConfigError(f"data.fit_on={fit_on!r}: use train or train_val")
        for name, a in anchors.items():
            if len(a) == 0:
                raise DataError(
                    f"split {name!r} has no complete sample in {entry['id']} (context_length + horizon = "
                    f"{ctx + h} rows per symbol); move data.split boundaries or use more data"
                )
        all_train = len(anchors["train"])
        if fraction < 1:  # a seeded subset; a smaller fraction keeps a subset of a larger one's windows
            keep = np.random.default_rng([self.seed, 1]).permutation(all_train)[
                : max(1, round(fraction * all_train))
            ]
            anchors["train"] = np.sort(anchors["train"][keep])
        return anchors, all_train

    def _datasets(
        self, feats: np.ndarray, labels: np.ndarray, anchors: dict[str, np.ndarray], ctx: int
    ) -> dict[str, WindowDataset]:
        """One tensor of features and of labels shared by every split (training labels shuffled for the
        shuffled-label control: val/test stay real, so a leak would still score > 0.5)."""
        train_labels = labels
        if self.data_cfg.shuffle_labels:
            a = anchors["train"]
            train_labels = labels.copy()
            train_labels[a] = np.random.default_rng(self.seed).permutation(labels[a])
        x = torch.from_numpy(feats.astype(np.float32))
        dtype = torch.long if int(self.task_cfg.num_classes) > 1 else torch.float32
        y = torch.from_numpy(np.nan_to_num(labels, nan=0.0)).to(dtype)
        y_train = (
            y if train_labels is labels else torch.from_numpy(np.nan_to_num(train_labels, nan=0.0)).to(dtype)
        )
        return {
            name: WindowDataset(x, y_train if name == "train" else y, a, ctx) for name, a in anchors.items()
        }

    def anchor_frame(self, split: str) -> pd.DataFrame:
        """One row per sample of `split`, in prediction order: date, symbol, ret (close[t+1]/close[t] - 1 of
        anchor t, inside its symbol: an anchor always has its horizon's rows after it) and the real label."""
        a = self.datasets[split].anchors.numpy()
        close = self.rows["close"].to_numpy()
        return pd.DataFrame(
            {
                "date": self.rows["date"].to_numpy()[a],
                "symbol": self.rows["symbol"].to_numpy()[a],
                "ret": close[a + 1] / close[a] - 1,
                "label": self.rows["label"].to_numpy()[a],  # the real label, even with shuffle_labels
            }
        )

    def calendar(self) -> pd.DatetimeIndex:
        """Every date of the dataset, all symbols together (sorted, unique): walk-forward folds cut on it."""
        return pd.DatetimeIndex(self.rows["date"].drop_duplicates().sort_values())

    def _segments(self, dates: pd.DatetimeIndex, blocks, ctx: int, h: int) -> list[list[Segment]]:
        """Per symbol: its [train, val, test] row segments (calendar boundaries shared by all symbols)."""
        split = self.data_cfg.split
        if not self.data_cfg.get("panel"):
            return [train_val_test(dates, split, ctx, h)]
        purge = 0 if split.get("purge") is None else int(split.purge)
        bounds = calendar_bounds(dates.unique().sort_values(), split)
        return [symbol_segments(dates[a:b], bounds, purge, offset=a) for _, a, b in blocks]

    def _normalise(self, feats: np.ndarray, segs: list[list[Segment]]) -> np.ndarray:
        """z-score with statistics from training rows only: pooled over symbols, or per symbol."""
        d = self.data_cfg
        if d.normalize == "none":
            return feats
        if d.normalize != "zscore":
            raise ConfigError(f"data.normalize={d.normalize!r}: use zscore or none")
        pooled = None
        if d.normalize_by == "pooled" or len(segs) == 1 or any(s[0].stop - s[0].start < 2 for s in segs):
            pooled = _stats(feats[np.concatenate([np.arange(s[0].start, s[0].stop) for s in segs])])
        if d.normalize_by == "pooled" or len(segs) == 1:
            feats -= pooled[0]
            feats /= pooled[1]
            return feats
        for s in segs:  # per symbol; a symbol without training rows falls back to the pooled statistics
            tr, (a, b) = s[0], (s[0].start, s[-1].stop)
            m, sd = _stats(feats[tr.start : tr.stop]) if tr.stop - tr.start > 1 else pooled
            feats[a:b] -= m
            feats[a:b] /= sd
        return feats

    def _describe(self, entry, dates, segs, blocks, anchors, labels, all_train: int) -> dict[str, Any]:
        d, splits = self.data_cfg, {}
        for i, name in enumerate(SPLITS):
            a = anchors[name]
            splits[name] = {
                "samples": len(a),
                "positive_rate": float(labels[a].mean()),
                "first_date": dates[a.min()].date().isoformat(),
                "last_date": dates[a.max()].date().isoformat(),
                "rows": [segs[0][i].start, segs[0][i].stop]
                if len(segs) == 1
                else int(sum(s[i].stop - s[i].start for s in segs)),
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
            "symbols": len(blocks),
            "normalize_by": str(d.normalize_by),
            "train_fraction": float(d.train_fraction),
            "train_windows": len(anchors["train"]),
            "train_windows_available": all_train,
            "shuffle_labels": bool(d.shuffle_labels),
            "splits": splits,
        }

    def _loader(self, split: str, train: bool) -> DataLoader:
        ds = self.datasets[split]
        if train:
            rank, world = 0, 1
            if torch.distributed.is_available() and torch.distributed.is_initialized():  # a shard per rank
                rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
            inner = ShardedShuffle(len(ds), self.seed, rank, world)
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


def _check_both_classes(labels: np.ndarray, anchors: dict, task) -> None:
    """A threshold no H-day move reaches (or every move does) gives one class: refused before training,
    which would otherwise end with a NaN AUC that looks like divergence."""
    for name in ("train", "val"):
        a = anchors.get(name)
        y = labels[a] if a is not None and len(a) else np.array([])
        y = y[np.isfinite(y)]
        if len(y) and y.min() == y.max():
            raise ConfigError(
                f"task.threshold={task.threshold}: every one of the {len(y)} {name} labels is {int(y[0])} "
                f"(task.label={task.label} over task.horizon={task.horizon} rows), so nothing can be learnt or "
                f"scored; choose a threshold inside the range of those moves, e.g. task.threshold=0.01"
            )

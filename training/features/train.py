"""The training loop for feature MLPs: AdamW, a learning-rate schedule, class weights, early
stopping on a validation metric, ensembles of independently trained members, and temperature
scaling fitted on validation logits.

Runs are deterministic given the seed on the CPU: every random source (initialisation, batch
order, dropout) draws from seeded generators and deterministic kernels are requested.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import torch
from sklearn.metrics import f1_score
from torch import nn
from tqdm.auto import tqdm

from modelcore.models import build_model
from modelcore.models.ensemble import MLPEnsemble
from training.features.config import ModelConfig, TrainConfig
from training.fitting import class_weights, resolve_device, seeded

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    learning_rate: float
    valid_loss: float | None = None
    valid_accuracy: float | None = None
    valid_macro_f1: float | None = None
    valid_log_loss: float | None = None


@dataclass
class TrainResult:
    """The chosen weights (best epoch, or the last when training for a fixed count).

    For an ensemble, ``member_epochs`` holds each member's chosen epoch, ``best_epoch`` their
    median, ``epochs_run`` the longest member's run and ``history`` the first member's.
    """

    model: nn.Module
    architecture: dict[str, object]
    best_epoch: int
    epochs_run: int
    history: list[EpochRecord] = field(default_factory=list)
    member_epochs: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.member_epochs:
            self.member_epochs = (self.best_epoch,)


def member_seed(seed: int, index: int) -> int:
    """Member ``index`` of a run seeded ``seed`` trains with this seed (member 0: ``seed``)."""
    return seed + 1_000_003 * index


def train_model(
    x_train: FloatArray,
    y_train: IntArray,
    num_classes: int,
    model_config: ModelConfig,
    config: TrainConfig,
    x_valid: FloatArray | None = None,
    y_valid: IntArray | None = None,
    fixed_epochs: Sequence[int] | None = None,
    progress: bool = True,
) -> TrainResult:
    """An ``MLPClassifier`` (``members`` 1) or an ``MLPEnsemble`` of independently trained
    members, each with its own seed (``member_seed``) and, with ``config.bootstrap``, its own
    bootstrap sample of the rows; each member stops early on the validation rows on its own.

    ``fixed_epochs`` (a refit) gives each member's epoch count, e.g. a selection run's
    ``member_epochs``.
    """
    members = model_config.members
    if fixed_epochs is not None and len(fixed_epochs) != members:
        raise ValueError(f"fixed_epochs needs one count per member ({members})")
    results: list[TrainResult] = []
    for index in range(members):
        seed = member_seed(config.seed, index)
        rows = np.arange(len(x_train))
        if config.bootstrap:
            rows = np.sort(np.random.default_rng(seed).integers(0, len(x_train), len(x_train)))
        results.append(
            train_classifier(
                x_train[rows],
                y_train[rows],
                num_classes,
                model_config.member(),
                replace(config, seed=seed),
                x_valid,
                y_valid,
                None if fixed_epochs is None else fixed_epochs[index],
                progress and members == 1,
            )
        )
    if members == 1:
        return results[0]
    architecture = model_config.architecture(int(x_train.shape[1]), num_classes)
    ensemble = build_model(architecture)
    assert isinstance(ensemble, MLPEnsemble)
    for member, result in zip(ensemble.members, results, strict=True):
        member.load_state_dict(result.model.state_dict())
    ensemble.eval()
    epochs = tuple(result.best_epoch for result in results)
    return TrainResult(
        model=ensemble,
        architecture=architecture,
        best_epoch=int(np.median(epochs)),
        epochs_run=max(result.epochs_run for result in results),
        history=results[0].history,
        member_epochs=epochs,
    )


def train_classifier(
    x_train: FloatArray,
    y_train: IntArray,
    num_classes: int,
    model_config: ModelConfig,
    config: TrainConfig,
    x_valid: FloatArray | None = None,
    y_valid: IntArray | None = None,
    fixed_epochs: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Trains one MLP on standardised rows ``(N, F)``.

    With validation rows it stops early on ``config.stop_on`` and returns the best epoch's
    weights; with ``fixed_epochs`` (a refit) it runs that many epochs of the same
    ``config.epochs``-long schedule and returns the last weights, so the refit sees the
    learning rates the chosen epoch saw.
    """
    if (x_valid is None) == (fixed_epochs is None):
        raise ValueError("give either validation rows or fixed_epochs")
    device = resolve_device(config.device)
    with seeded(config.seed, device):
        return _train(
            x_train,
            y_train,
            num_classes,
            model_config,
            config,
            device,
            x_valid,
            y_valid,
            fixed_epochs,
            progress,
        )


def _train(
    x_train: FloatArray,
    y_train: IntArray,
    num_classes: int,
    model_config: ModelConfig,
    config: TrainConfig,
    device: torch.device,
    x_valid: FloatArray | None,
    y_valid: IntArray | None,
    fixed_epochs: int | None,
    progress: bool,
) -> TrainResult:
    architecture = model_config.member().architecture(int(x_train.shape[1]), num_classes)
    model = build_model(architecture).to(device)
    generator = torch.Generator().manual_seed(config.seed)
    features = torch.from_numpy(x_train)
    targets = torch.from_numpy(y_train)
    steps_per_epoch = max(1, -(-len(features) // config.batch_size))
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    scheduler = _scheduler(optimizer, config, steps_per_epoch)
    weights = class_weights(y_train, num_classes) if config.class_weighting else None
    loss_function = nn.CrossEntropyLoss(
        weight=weights.to(device) if weights is not None else None,
        label_smoothing=config.label_smoothing,
    )
    last_epoch = fixed_epochs if fixed_epochs is not None else config.epochs
    history: list[EpochRecord] = []
    best: tuple[float, float] = (float("-inf"), float("-inf"))
    best_state = copy.deepcopy(model.state_dict())
    best_epoch = 0
    bar = tqdm(range(1, last_epoch + 1), desc="epochs", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        order = torch.randperm(len(features), generator=generator)
        total = 0.0
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            if len(batch) < 2 and model_config.batch_norm:
                continue  # BatchNorm cannot normalise a single row
            inputs = features[batch]
            if config.input_noise > 0:
                inputs = inputs + config.input_noise * torch.randn(
                    inputs.shape, generator=generator
                )
            logits = model(inputs.to(device))
            loss = loss_function(logits, targets[batch].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(batch)
        record = EpochRecord(epoch, total / len(features), optimizer.param_groups[0]["lr"])
        if x_valid is not None and y_valid is not None:
            record = _validate(model, record, x_valid, y_valid, loss_function, device)
            score = _stopping_score(record, config.stop_on)
            if score > best:
                best, best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
            bar.set_postfix(f1=f"{record.valid_macro_f1:.3f}", best=best_epoch)
            if epoch - best_epoch >= config.patience:
                history.append(record)
                break
        history.append(record)
    if fixed_epochs is not None:
        best_epoch, best_state = last_epoch, model.state_dict()
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(model.cpu(), architecture, best_epoch, len(history), history)


def _stopping_score(record: EpochRecord, stop_on: str) -> tuple[float, float]:
    """Higher is better; ties on the metric go to the lower validation log-loss."""
    log_loss = record.valid_log_loss if record.valid_log_loss is not None else float("inf")
    if stop_on == "log_loss":
        return (-log_loss, 0.0)
    metric = record.valid_accuracy if stop_on == "accuracy" else record.valid_macro_f1
    return (metric if metric is not None else 0.0, -log_loss)


def _scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    total = config.epochs * steps_per_epoch
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=config.learning_rate, total_steps=total + 1, pct_start=0.2
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total + 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def _validate(
    model: nn.Module,
    record: EpochRecord,
    x_valid: FloatArray,
    y_valid: IntArray,
    loss_function: nn.Module,
    device: torch.device,
) -> EpochRecord:
    logits = logits_of(model, x_valid, device)
    predictions = logits.argmax(dim=1).numpy()
    targets = torch.from_numpy(y_valid)
    loss = float(loss_function(logits.to(device), targets.to(device)))
    return EpochRecord(
        epoch=record.epoch,
        train_loss=record.train_loss,
        learning_rate=record.learning_rate,
        valid_loss=loss,
        valid_accuracy=float((predictions == y_valid).mean()),
        valid_macro_f1=float(f1_score(y_valid, predictions, average="macro", zero_division=0.0)),
        valid_log_loss=float(nn.functional.cross_entropy(logits, targets)),
    )


def logits_of(model: nn.Module, x: FloatArray, device: torch.device | None = None) -> torch.Tensor:
    """Logits ``(N, C)`` on the CPU for standardised rows ``(N, F)``, in evaluation mode."""
    was_training = model.training
    model.eval()
    target = device or next(itertools.chain(model.parameters(), model.buffers())).device
    with torch.no_grad():
        logits: torch.Tensor = model(torch.from_numpy(x).to(target)).cpu()
    model.train(was_training)
    return logits

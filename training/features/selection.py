"""Selection and refit on one split, shared by a single run (``pipeline``) and by every fold of a
grouped cross-validation (``crossval``), so both estimate exactly the procedure that ships.

The selection model is fitted on ``train`` with early stopping on ``valid`` and its temperature
fitted on ``valid``. With ``refit`` the weights are trained again on ``train + valid``
(preprocessing refitted on those rows) for each member's chosen epoch count, keeping the
validation temperature. ``test`` is never touched here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from modelcore.preprocessing import FeaturePreprocessor
from training.features.boosting import BlendParts, blend_with_trees, select_blend
from training.features.config import RunConfig, TitleConfig
from training.features.preprocessor_fit import IMPUTATION_SPECS, fit_preprocessor
from training.features.tabular import StrArray, TabularDataset
from training.features.title_stack import TitleParts, fit_title_stack, with_codes, with_title
from training.features.titles import fit_title_member, title_codes, title_log_probabilities
from training.features.train import FloatArray, IntArray, TrainResult, logits_of, train_model
from training.fitting import fit_temperature
from training.splits import Split


@dataclass(frozen=True)
class Fitted:
    """The selection model and, with refit, the model trained again on train+valid (otherwise
    ``shipped`` is the selection model); ``temperature`` was fitted on valid."""

    selection: TrainResult
    preprocessor: FeaturePreprocessor
    temperature: float
    shipped: TrainResult
    shipped_preprocessor: FeaturePreprocessor
    blend: BlendParts | None = None
    title: TitleParts | None = None


def fit_preprocessing(dataset: TabularDataset, rows: IntArray) -> FeaturePreprocessor:
    """The preprocessor for ``rows`` of ``dataset``: built from their features alone."""
    spec = IMPUTATION_SPECS[dataset.name]
    return fit_preprocessor(dataset.features[rows], dataset.feature_names, spec)


def title_source(dataset: TabularDataset, config: RunConfig) -> tuple[TitleConfig, StrArray] | None:
    """The title member's settings and the rows' titles, when the run stacks one (asked for,
    and the dataset has titles)."""
    if config.titles is None or dataset.titles is None:
        return None
    return config.titles, dataset.titles


def uses_titles(dataset: TabularDataset, config: RunConfig) -> bool:
    return title_source(dataset, config) is not None


def model_inputs(
    dataset: TabularDataset, config: RunConfig, x: FloatArray, rows: IntArray
) -> FloatArray:
    """What the model takes for ``rows`` whose standardised features are ``x``: those alone,
    or with the rows' title code points when the run has a title member."""
    source = title_source(dataset, config)
    if source is None:
        return x
    settings, titles = source
    return with_codes(x, titles[rows], settings.max_length)


def select_and_refit(
    dataset: TabularDataset, split: Split, config: RunConfig, progress: bool = True
) -> Fitted:
    """Early stopping and temperature on ``split.valid``; refit on train+valid if asked. With
    ``config.trees`` the model is the MLP blended with boosted trees
    (``training.features.boosting``), whose rounds and temperatures are also chosen on valid;
    ``temperature`` is the blend's. With a title member (``config.titles``) it is fitted on the
    train titles and stacked onto that model with weights fitted on the valid rows."""
    labels, classes = dataset.labels, len(dataset.label_names)
    preprocessor = fit_preprocessing(dataset, split.train)
    x = preprocessor.transform(dataset.features)
    selection = train_model(
        x[split.train],
        labels[split.train],
        classes,
        config.model,
        config.train,
        x_valid=x[split.valid],
        y_valid=labels[split.valid],
        progress=progress,
    )
    temperature = fit_temperature(logits_of(selection.model, x[split.valid]), labels[split.valid])
    blend = None
    if config.trees is not None:
        train_rows, valid_rows = x[split.train], x[split.valid]
        selection, blend = select_blend(
            selection,
            *(train_rows, labels[split.train], valid_rows, labels[split.valid]),
            classes,
            config.trees,
            temperature,
            config.train.seed,
        )
        temperature = fit_temperature(logits_of(selection.model, valid_rows), labels[split.valid])
    title = None
    source = title_source(dataset, config)
    if source is not None:
        selection, title = _select_title(dataset, split, source, x, selection, temperature)
    if not config.refit:
        return Fitted(selection, preprocessor, temperature, selection, preprocessor, blend, title)
    rows = np.sort(np.concatenate([split.train, split.valid]))
    shipped, shipped_preprocessor = train_fixed(
        dataset, rows, config, selection.member_epochs, blend, progress, title
    )
    return Fitted(selection, preprocessor, temperature, shipped, shipped_preprocessor, blend, title)


def _select_title(
    dataset: TabularDataset,
    split: Split,
    source: tuple[TitleConfig, StrArray],
    x: FloatArray,
    numeric: TrainResult,
    temperature: float,
) -> tuple[TrainResult, TitleParts]:
    """The title member fitted on the train rows' titles and stacked onto ``numeric`` with
    weights fitted on the valid rows that have a title."""
    settings, titles = source
    labels = dataset.labels
    member = fit_title_member(
        titles[split.train].tolist(), labels[split.train], len(dataset.label_names), settings
    )
    valid = split.valid[titles[split.valid] != ""]
    codes = title_codes(titles[valid].tolist(), settings.max_length)
    parts = fit_title_stack(
        logits_of(numeric.model, x[valid]),
        title_log_probabilities(member, codes),
        labels[valid],
        temperature,
    )
    return with_title(numeric, member, parts, int(x.shape[1])), parts


def train_fixed(
    dataset: TabularDataset,
    rows: IntArray,
    config: RunConfig,
    member_epochs: Sequence[int],
    blend: BlendParts | None,
    progress: bool = False,
    title: TitleParts | None = None,
) -> tuple[TrainResult, FeaturePreprocessor]:
    """Preprocessing fitted on ``rows`` and the model trained on them with nothing left to
    choose: each member for its epoch count and, with a selection's ``blend``, the trees for its
    rounds under its part temperatures, and with a ``title`` stack the title member fitted on
    the rows' titles and stacked with those weights. A refit, the model trained on every row after
    cross-validation, and the reverse direction of a list swap are all this."""
    preprocessor = fit_preprocessing(dataset, rows)
    x = preprocessor.transform(dataset.features[rows])
    y, classes = dataset.labels[rows], len(dataset.label_names)
    model = train_model(
        x, y, classes, config.model, config.train, fixed_epochs=member_epochs, progress=progress
    )
    if config.trees is not None and blend is not None:
        model = blend_with_trees(model, x, y, classes, config.trees, blend, config.train.seed)
    source = title_source(dataset, config)
    if title is not None and source is not None:
        member = fit_title_member(source[1][rows].tolist(), y, classes, source[0])
        model = with_title(model, member, title, int(x.shape[1]))
    return model, preprocessor

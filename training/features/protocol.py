"""The words of a features run's ``split_protocol``: what was trained, on which rows, chosen how.

Every figure in a manifest sits next to the sentence that says how it was measured; these
build those sentences from the run's configuration and what its selection chose.
"""

from __future__ import annotations

from training.features.boosting import BlendParts
from training.features.config import RunConfig
from training.features.tabular import TabularDataset
from training.features.title_stack import TitleParts
from training.features.train import IntArray, TrainResult
from training.splits import Split


def model_words(config: RunConfig) -> str:
    """How a protocol names the model: the MLP (ensemble) and, with trees, the blend."""
    members = config.model.members
    what = f"an ensemble of {members} MLPs" if members > 1 else "an MLP"
    if config.trees is not None:
        what += (
            f" averaged with gradient-boosted trees (weight {config.trees.weight:g}; "
            f"rounds chosen on valid log-loss, each part's temperature fitted on valid)"
        )
    if config.titles is not None:
        what += (
            ", stacked with a title member (TF-IDF character n-grams of the track title, a"
            " logistic regression fitted on the train titles; the stack's weights fitted on"
            " valid)"
        )
    return what


def title_words(title: TitleParts | None) -> str:
    if title is None:
        return ""
    return (
        ", and the title member (TF-IDF character n-grams, a logistic regression) trained on all"
        " rows' titles and stacked with the median fold weights"
    )


def tree_words(blend: BlendParts | None) -> str:
    if blend is None:
        return ""
    return f" and the trees' median fold rounds ({blend.rounds}) and part temperatures"


def split_protocol(
    dataset: TabularDataset, split: Split, config: RunConfig, selection: TrainResult, where: str
) -> str:
    unit = "3-s segment rows grouped by track" if dataset.name == "gtzan3" else "rows"
    groups = "tracks" if dataset.name.startswith("gtzan") else "artists"

    def part(rows: IntArray) -> str:
        return f"{len(rows)} {unit} / {len(set(dataset.groups[rows].tolist()))} {groups}"

    what = model_words(config)
    stop_on = config.train.stop_on.replace("_", "-")
    text = (
        f"Split by {split.method} with no {groups[:-1]} on two sides: {what} trained on train "
        f"({part(split.train)}), early stopping on valid {stop_on} and temperature fitted on "
        f"valid ({part(split.valid)})"
    )
    if len(split.test):
        text += f", test ({part(split.test)}) touched only for the reported metrics"
    if split.rows_outside:
        text += f"; {split.rows_outside} rows on no list were not used"
    if config.refit:
        epochs = (
            f"each member's chosen epochs (median {selection.best_epoch})"
            if config.model.members > 1
            else f"the chosen {selection.best_epoch} epochs"
        )
        trees = " and the trees for their chosen rounds" if config.trees is not None else ""
        text += (
            f"; shipped weights refit on train+valid for {epochs}{trees} with the valid temperature"
        )
    if where == "test":
        text += "; metrics are the shipped model's on the held-out test part."
    else:
        text += (
            "; metrics are the train-only selection model's on valid (an estimate: valid also "
            "chose the epoch and temperature; no test rows exist here)."
        )
    return text

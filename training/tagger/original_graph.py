"""Runs the original musicnn TensorFlow graph on given patches; only for the reference outputs
that prove our port (``python -m training.tagger.reference``).

Runs in a separate conversion-only environment with ``tensorflow-cpu`` (never the project's
venv, never torch): ``python original_graph.py WHEEL_DIR MODEL INPUT.npz OUTPUT.npz``, where
WHEEL_DIR is the unpacked ``musicnn`` wheel. It builds the graph with the wheel's own
``musicnn.models.define_model`` in inference mode and restores the wheel's checkpoint, as
``musicnn.extractor`` does, then feeds the float32 patches as they are (no front-end here).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np


def main() -> None:
    wheel_directory, model, source, target = sys.argv[1:5]
    sys.path.insert(0, wheel_directory)
    tf: Any = importlib.import_module("tensorflow")
    configuration: Any = importlib.import_module("musicnn.configuration")
    models: Any = importlib.import_module("musicnn.models")

    tf.compat.v1.disable_eager_execution()
    patches = np.load(source)["patches"].astype(np.float32)
    labels = configuration.MSD_LABELS if "MSD" in model else configuration.MTT_LABELS
    with tf.name_scope("model"):
        x = tf.compat.v1.placeholder(tf.float32, [None, patches.shape[1], configuration.N_MELS])
        training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, training, model, len(labels))
        logits, mean_pool, max_pool, penultimate = outputs[0], outputs[-3], outputs[-2], outputs[-1]
        probabilities = tf.nn.sigmoid(logits)
    session = tf.compat.v1.Session()
    tf.compat.v1.train.Saver().restore(session, f"{wheel_directory}/musicnn/{model}/")
    values = session.run(
        [probabilities, penultimate, mean_pool, max_pool], {x: patches, training: False}
    )
    names = ("probabilities", "penultimate", "mean_pool", "max_pool")
    np.savez(target, **dict(zip(names, values, strict=True)))


if __name__ == "__main__":
    main()

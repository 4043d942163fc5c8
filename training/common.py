"""The array types and the data error that both tracks and the splits share."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
StrArray = npt.NDArray[np.str_]


class DataFormatError(ValueError):
    """A data file that cannot be used as it is; the message names file, line and column."""

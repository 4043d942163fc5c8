"""Abstention settings as calls give them: checked, and resolved against the server's and the
model's defaults. The rules themselves are ``modelcore.abstention``'s."""

from __future__ import annotations

from server.errors import InvalidArgument


def resolve_min_probability(requested: float | None, server_default: float, model: float) -> float:
    """The call's own threshold, else the server's (``GENRE_MIN_PROBABILITY``, -1 for none),
    else the model's, chosen on validation data."""
    if requested is not None:
        return requested
    return model if server_default < 0 else server_default


def call_min_probability(
    requested: float | None, field: str, server_default: float, model: float
) -> float:
    """The threshold one call gets: its own (checked, ``field`` named when bad), else the
    server's, else the model's."""
    own = None if requested is None else check_min_probability(requested, field)
    return resolve_min_probability(own, server_default, model)


def check_min_probability(value: float, field: str) -> float:
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise InvalidArgument(f"{field}: must be in [0, 1] (0 never abstains), got {value}")
    return value


def check_silence_dbfs(value: float, field: str) -> float:
    if not value <= 0.0:  # NaN fails too; -inf is allowed and never marks silence
        raise InvalidArgument(f"{field}: must be at most 0 dBFS (-inf: never), got {value}")
    return value

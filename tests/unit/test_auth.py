"""Bearer tokens (``server.auth``): the token file's rules and the interceptor's decision per
header, scheme case, token and method."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from server.auth import BearerTokenInterceptor, load_grants
from server.metrics import ServerMetrics

TOKEN = "a-long-enough-token-1"
LIMITED = "a-long-enough-token-2"


def interceptor(tmp_path: Path) -> BearerTokenInterceptor:
    path = tmp_path / "tokens"
    path.write_text(f"# staff\n{TOKEN}\n{LIMITED} ListModels  # read-only\n")
    return BearerTokenInterceptor(load_grants(path), (), ServerMetrics.create())


@pytest.mark.parametrize(
    ("header", "method", "code"),
    [
        (f"Bearer {TOKEN}", "ClassifyFeatures", None),
        (f"bearer {TOKEN}", "ClassifyFeatures", None),
        (f"BEARER {TOKEN}", "ClassifyFeatures", None),
        (f"Bearer {LIMITED}", "ListModels", None),
        (f"Bearer {LIMITED}", "ClassifyFeatures", grpc.StatusCode.PERMISSION_DENIED),
        ("Bearer not-a-known-token-at-all", "ListModels", grpc.StatusCode.UNAUTHENTICATED),
        (f"Basic {TOKEN}", "ListModels", grpc.StatusCode.UNAUTHENTICATED),
        ("Bearer ", "ListModels", grpc.StatusCode.UNAUTHENTICATED),
        (None, "ListModels", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
def test_each_header_gets_its_decision(
    tmp_path: Path, header: str | None, method: str, code: grpc.StatusCode | None
) -> None:
    refusal = interceptor(tmp_path)._refusal(header, method)
    assert (refusal[0] if refusal else None) == code


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("short\n", "at least 16 characters"),
        (f"{TOKEN[:8]}#{TOKEN[8:]}\n", "'#' inside a token"),
        ("# only a comment\n\n", "no tokens"),
    ],
)
def test_a_bad_token_file_stops_the_start(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        load_grants(path)


def test_comments_and_method_lists_are_read(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"  # header\n{TOKEN} ListModels,ClassifyFeatures # two methods\n")
    (grant,) = load_grants(path)
    assert grant.methods == frozenset({"ListModels", "ClassifyFeatures"})

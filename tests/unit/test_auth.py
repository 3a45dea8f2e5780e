"""Bearer-token checks of the gateway (services/gateway/auth.py) on a real token file."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import grpc
import pytest

from services.common.errors import UnauthenticatedError
from services.gateway import auth
from services.gateway.auth import TokenAuth, read_tokens, token_file
from services.gateway.status import to_status
from services.launcher import auth_summary

GOOD = "k3y-for-tests-0123456789abcdef"
OTHER = "second-accepted-token"


@pytest.fixture()
def tokens(tmp_path: Path) -> Path:
    path = tmp_path / "tokens"
    path.write_text(f"# accepted API tokens\n{GOOD}\n\n  {OTHER}  \n")
    return path


def _bearer(token: str) -> list[tuple[str, str]]:
    return [("application", "emer"), ("authorization", f"Bearer {token}")]


def test_accepted_tokens_pass_and_others_are_unauthenticated(
    tokens: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checker = TokenAuth(tokens)
    assert checker.enabled and checker.token_count == 2
    checker.check(_bearer(GOOD), "Analyze", "ipv4:127.0.0.1:1")
    checker.check([("authorization", f"bearer {OTHER}")], "Analyze", "")  # scheme is any case
    with caplog.at_level(logging.WARNING, logger=auth.__name__):
        for metadata in (
            [("application", "emer")],  # none
            _bearer(GOOD[:-1]),  # almost right
            _bearer(GOOD + "x"),
            [("authorization", GOOD)],  # not a bearer token
            _bearer(""),
        ):
            with pytest.raises(UnauthenticatedError) as raised:
                checker.check(metadata, "Analyze", "ipv4:127.0.0.1:2")
            code, message = to_status(raised.value, "r1")
            assert code == grpc.StatusCode.UNAUTHENTICATED
            assert "token" in message and GOOD not in message
    assert len(caplog.records) == 5
    assert all(GOOD[:8] not in r.getMessage() for r in caplog.records)  # never logged
    assert "Analyze" in caplog.records[0].getMessage()


def test_no_token_file_means_auth_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(auth.TOKEN_FILE_ENV, raising=False)
    assert token_file(None) is None
    checker = TokenAuth(None)
    assert not checker.enabled
    checker.check([], "Analyze", "")  # anyone passes
    assert "OFF" in auth_summary({"applications": [{"args": {"gateway": {}}}]})


def test_the_environment_names_the_file_over_the_config(
    tokens: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(auth.TOKEN_FILE_ENV, str(tokens))
    assert token_file(str(tmp_path / "from-config")) == tokens
    summary = auth_summary({"applications": [{"args": {"gateway": {}}}]})
    assert str(tokens) in summary and "2 tokens" in summary
    monkeypatch.delenv(auth.TOKEN_FILE_ENV)
    assert token_file(str(tokens)) == tokens


def test_bad_token_files_are_refused_at_start(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("# nothing yet\n\n")
    with pytest.raises(ValueError, match="holds no token"):
        TokenAuth(empty)
    with pytest.raises(ValueError, match="cannot read"):
        read_tokens(tmp_path / "missing")
    spaced = tmp_path / "spaced"
    spaced.write_text("two words\n")
    with pytest.raises(ValueError, match="space"):
        read_tokens(spaced)


def test_a_rotated_file_is_read_again(
    tokens: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(auth, "RELOAD_CHECK_S", 0.0)
    checker = TokenAuth(tokens)
    tokens.write_text("rotated-token\n")
    os.utime(tokens, ns=(1, 1))  # a new mtime even on coarse clocks
    checker.check(_bearer("rotated-token"), "Analyze", "")
    with pytest.raises(UnauthenticatedError):
        checker.check(_bearer(GOOD), "Analyze", "")
    # A rotation that leaves the file empty keeps the previous tokens instead of locking out.
    tokens.write_text("")
    os.utime(tokens, ns=(2, 2))
    with caplog.at_level(logging.ERROR, logger=auth.__name__):
        checker.check(_bearer("rotated-token"), "Analyze", "")
    assert "keeping the previous tokens" in caplog.text

"""Property tests are reproducible in CI and explore anew by hand (tests/conftest.py)."""

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from tests.conftest import _in_ci, hypothesis_profile


def _drawn(profile: str) -> list[str]:
    """The texts a 30-example property test is given under a profile."""
    seen: list[str] = []

    @hypothesis_settings(hypothesis_settings.get_profile(profile), max_examples=30, database=None)
    @given(st.text(min_size=1))
    def record(value: str) -> None:
        seen.append(value)

    record()
    return seen


def test_ci_draws_the_same_inputs_on_every_run():
    assert _drawn("ci") == _drawn("ci")


def test_by_hand_every_run_draws_new_inputs():
    assert _drawn("dev") != _drawn("dev")


def test_the_loaded_profile_is_the_one_the_environment_asks_for():
    loaded = hypothesis_settings.default
    assert loaded.derandomize is (hypothesis_profile() == "ci")
    assert (loaded.database is None) is (hypothesis_profile() == "ci")


def test_ci_is_when_ci_is_set_and_not_false(monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)
    for value, expected in (("true", True), ("1", True), ("", False), ("false", False)):
        monkeypatch.setenv("CI", value)
        assert _in_ci() is expected
        assert hypothesis_profile() == ("ci" if expected else "dev")
    monkeypatch.delenv("CI")
    assert _in_ci() is False and hypothesis_profile() == "dev"
    monkeypatch.setenv("HYPOTHESIS_PROFILE", "ci")
    assert hypothesis_profile() == "ci"

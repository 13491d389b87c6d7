"""Test-wide setup: Chalice's test client made safe to call from several threads at once."""
from __future__ import annotations

import contextlib

import chalice.test


@contextlib.contextmanager
def _environment_as_the_test_set_it(self, environment_variables):  # noqa: ARG001 - Chalice's signature
    # Chalice swaps os.environ for a patched copy around every request and back afterwards. Two threads doing so
    # interleave and leave os.environ a stale plain dict for the rest of the session, so later monkeypatched
    # variables never reach os.getenv or code holding the real mapping. The tests set the environment they want
    # (and .chalice/config.json's deployed values, such as EMAIL_SENDER=ses, are not wanted here).
    yield


chalice.test.BaseClient._patched_env_vars = _environment_as_the_test_set_it

"""Security tests run the flows on the reliability fixtures (emulators, tuned pairings, SMTP)."""

from tests.reliability.conftest import *  # noqa: F401,F403

"""The one error family of the runner; tasks turn it into ``invoke.Exit``."""

from __future__ import annotations


class StackError(Exception):
    """A failure the user can act on: one sentence, one exit code."""

    code = 1


class UsageError(StackError):
    """A bad flag, value or service name."""

    code = 2


class GuardError(StackError):
    """A guard refused to write: a process holds the database, remote data, another run."""

    code = 3


class BrokerError(StackError):
    """RabbitMQ does not answer, refuses the login or lacks the virtual host."""

    code = 4


class StepError(StackError):
    """A service command (install, migrate, seed, sync) failed."""

    code = 5


class BrokerUnreachable(StepError, BrokerError):
    """RabbitMQ did not answer in the middle of a step: a step failure for the code that retries
    or carries on without the broker, exit code 4 for the user."""

    code = 4


class VerifyError(StackError):
    """The stack is not in the expected state."""

    code = 6

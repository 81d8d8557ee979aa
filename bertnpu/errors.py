"""The one exception type for mistakes a user can make and fix."""


class BertnpuError(Exception):
    """A user-facing error: its message is one sentence naming the bad value and the fix.

    The CLI prints it without a traceback; internal invariants use ``assert`` instead.
    """


class BertnpuWarning(UserWarning):
    """A legal but probably pointless value: accepted, with one line naming its consequence.

    The CLI prints it as one ``bertnpu: note:`` line on stderr.
    """

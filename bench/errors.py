"""Errors the CLI turns into a one-line message and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: one line saying what is wrong and how to fix it.

    The CLI prints `error: <message>` to stderr, exits with code 2 and writes
    nothing. Raise it before any side effect (file, directory, process).
    """


EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # the shell's code for SIGINT (SIGTERM is handled the same way)

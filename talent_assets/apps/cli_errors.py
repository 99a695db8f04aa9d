"""The one error type of the ``talent`` commands: reported as one line on stderr, exit 1."""


class CliError(Exception):
    """A failure to report as one line on stderr."""

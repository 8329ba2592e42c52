"""User-facing errors: the CLI prints the message as one line and exits non-zero."""


class VidkompyError(Exception):
    """A problem with the user's input or environment, explained in one line."""

    exit_code = 2

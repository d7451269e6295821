"""The one error type the command line turns into a clear line and exit code 2."""


class UsageError(Exception):
    """Bad input from the user: the message names the field or file at fault."""

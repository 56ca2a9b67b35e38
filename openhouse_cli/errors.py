"""Errors the library raises; cli.py turns them into one-line messages."""


class OhlogError(Exception):
    """Base class: str(error) is the whole message shown to the user."""


class InvalidInput(OhlogError):
    """A record, or the JSON around it, is not a valid session document.

    ``location`` is ``FILE:LINE`` or ``FILE:LINE:COL``; ``field`` is a path such
    as ``actions[2].time`` (empty for JSON syntax errors).
    """

    def __init__(self, location, field, message, record=None):
        self.location = location
        self.field = field
        self.message = message
        self.record = record
        super().__init__(str(self))

    def __reduce__(self):  # picklable, for the validating worker process
        return (type(self), (self.location, self.field, self.message, self.record))

    def __str__(self):
        if self.field:
            return f"{self.location}: {self.field}: {self.message}"
        return f"{self.location}: {self.message}"


class NoDatabase(OhlogError):
    """The database a read-only command needs does not exist."""

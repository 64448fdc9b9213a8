"""The errors a user can cause. Each message says what happened and what to do.

The CLI prints them as one line (`error: ...`); the notebook app shows them as
text. Anything else escaping the library is a bug and keeps its traceback.
"""


class HuggingtweetsError(Exception):
    """Base class: a problem the user can fix, with a message that says how."""


class SourceError(HuggingtweetsError):
    """A source spec is unknown, or its posts cannot be read or downloaded."""


class NoPostsError(HuggingtweetsError):
    """A source worked but gave no posts."""


class NotEnoughTextError(HuggingtweetsError):
    """Too little text is left after cleaning to teach a model anything."""


class ModelError(HuggingtweetsError):
    """The base model cannot be found, downloaded or loaded."""


class SettingsError(HuggingtweetsError):
    """A setting has a value that cannot work."""


class MissingStepError(HuggingtweetsError):
    """A step needs the output of an earlier one that is not there."""


class OutOfMemoryError(HuggingtweetsError):
    """Training does not fit the accelerator's memory with these settings."""


class DamagedFileError(HuggingtweetsError):
    """A file huggingtweets wrote (posts, a fetched page, metrics) cannot be read back."""


class TrackingError(HuggingtweetsError):
    """W&B online refused or could not be reached: a run could not start, or an artifact could not be
    saved or used."""


class ExportError(HuggingtweetsError):
    """The model cannot be exported (no saved model, an architecture the converter does not know)."""


def one_line(value: object, limit: int = 200) -> str:
    """Text fit for a one-line message (an error, a server's own words): whitespace as single
    spaces, at most `limit` characters, the last an ellipsis when it was cut. A number is written
    out; anything else that is not text (a server's JSON null, list or object) is ""."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return ""
    line = " ".join(value.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"

"""One family of errors: everything a user can trigger derives from ``MedattnError``.

Each message says what is wrong with *this* input and what the user can do about it, so the app shows
it as it is (``st.error``) and the command line prints it on one line. Anything that is not a
``MedattnError`` is a bug in medattn, not a bad input.
"""


class MedattnError(Exception):
    """A bad input or an unusable resource, with a message that gives the cause and the fix."""


class ScanError(MedattnError, ValueError):
    """An upload that cannot be shown: what is wrong with this file and what to do."""


class ModelError(MedattnError, ValueError):
    """A model directory that cannot be loaded: which file or card field is wrong, and what to do."""


class DatasetError(MedattnError, ValueError):
    """A dataset that cannot be trained or evaluated on: what is wrong with it."""


class StoreError(MedattnError, RuntimeError):
    """The review store cannot be opened or written: why, without echoing any stored value."""


class ReviewError(MedattnError, ValueError):
    """A review that cannot be saved as submitted: what to fix in the form."""


class BatchError(MedattnError, ValueError):
    """A scoring run that cannot start: an input that names no file, or an output of an unknown format."""


class TrainingError(MedattnError, ValueError):
    """A training run that cannot start as asked: a batch that does not split over the processes, warm-up
    classes the model lacks, a preprocessing recipe that does not fit the network."""


class StudyError(MedattnError, ValueError):
    """A reader study that cannot be set up, or a reading that cannot be saved: what to change."""


class PacsError(MedattnError, RuntimeError):
    """DICOM results that cannot be made, or a DICOMweb server that cannot be reached or refuses: why, and
    what to do. Never echoes a value from the server or the file."""

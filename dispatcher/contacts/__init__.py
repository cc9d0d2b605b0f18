"""Contact lists: reading spreadsheets and CSV, finding the phone column, normalising numbers, ingest."""

from dispatcher.contacts.ingest import IngestResult, Message, Messages, Rejection, RejectKind, ingest
from dispatcher.contacts.phones import normalise, parse_mobile
from dispatcher.contacts.reader import Rows, open_rows

__all__ = [
    "IngestResult",
    "Message",
    "Messages",
    "RejectKind",
    "Rejection",
    "Rows",
    "ingest",
    "normalise",
    "open_rows",
    "parse_mobile",
]

"""Reading, checking and describing interaction data (see readers, roles, validate).

``import mtlrec`` does not import this package; importing ``mtlrec.data`` loads pandas
(the readers and checks need it).
"""
from mtlrec.data.roles import DataSpec, OWNERS, ROLE_NAMES, TASK_TYPES
from mtlrec.data.raw import RawData
from mtlrec.data.readers import load_census, load_data, load_files, load_uploaded
from mtlrec.data.tables import read_table
from mtlrec.data.suggest import suggest_spec
from mtlrec.data.validate import ValidationReport, validate
from mtlrec.data.summary import format_summary, summarize
from mtlrec.data.formats.census import census_spec

__all__ = ["DataSpec", "OWNERS", "ROLE_NAMES", "TASK_TYPES", "RawData", "load_data", "load_files", "load_uploaded",
           "read_table", "suggest_spec", "ValidationReport", "validate", "format_summary", "summarize",
           "census_spec", "load_census"]

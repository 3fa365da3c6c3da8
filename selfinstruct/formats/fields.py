"""Reading one field of a record for a layout's reader: its type checked, its text one a UTF-8 file
can hold, and a problem named by the field (FieldError). The caller that knows the file and line
words it as a RecordError."""

from __future__ import annotations

from selfinstruct.formats.records import invalid_text


class FieldError(ValueError):
    """A record that is not a task of its layout: the field at fault (None: the record itself) and what
    is wrong; its text is how an error names them after the file and line."""

    def __init__(self, field: str | None, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"field '{field}': {problem}" if field else problem)


def check_object(record: object) -> dict:
    if not isinstance(record, dict):
        raise FieldError(None, f"expected a JSON object, got {type(record).__name__}")
    return record


def text(record: dict, key: str, name: str = "", required: bool = False) -> str:
    """The string ``record[key]`` ("" if absent or null, unless ``required``); ``name`` is how the
    field is named in an error (default: ``key``)."""
    value = record.get(key)
    if value is None:
        if required:
            raise FieldError(name or key, "missing")
        return ""
    if type(value) is not str:
        raise FieldError(name or key, f"expected a string, got {type(value).__name__}")
    if not value.isascii():
        problem = invalid_text(value)
        if problem:
            raise FieldError(name or key, problem)
    return value


def labels(record: dict) -> tuple[bool | None, str, str]:
    """The seed format's optional fields, read wherever a record has them: is_classification (None when
    absent or null), id (a string or a number, "" when absent or null) and name."""
    is_classification, task_id, name = record.get("is_classification"), record.get("id"), record.get("name")
    if is_classification is None and task_id is None and name is None:  # most records (filter reads millions)
        return None, "", ""
    if is_classification is not None and type(is_classification) is not bool:
        raise FieldError("is_classification", f"expected true or false, got {is_classification!r}")
    if task_id is None:
        task_id = ""
    elif type(task_id) is int:
        task_id = str(task_id)
    else:
        task_id = text(record, "id")
    return is_classification, task_id, text(record, "name")

"""The log lines of nginx, uWSGI and the default app as records in the documented schema, whichever LOG_FORMAT wrote
them: JSON lines as they are, and the plain lines of LOG_FORMAT=text read back into the same fields.

The text layouts are read from where they are written, not spelled again: uWSGI's two `logformat` lines
(uwsgi/uwsgi.ini), whose JSON one names the field each variable goes to, and the default app's text formatter
(app/microposts/settings.py), whose LogRecord attributes map to the fields its JSON formatter writes them under
(app/microposts/observability.py: JsonFormatter). A text line carries no field its layout lacks (the app's pid and
status).
"""

from __future__ import annotations

import json
import re

from tools.compose import ROOT

# uWSGI's request log: the JSON layout's line and the text layout's (uwsgi/uwsgi.ini: `if-not-env`/`if-env`).
_UWSGI_INI = (ROOT / "uwsgi/uwsgi.ini").read_text(encoding="utf-8")
_UWSGI_JSON, _UWSGI_TEXT = (
    re.search(rf"^{condition} = LOG_FORMAT=text\nlogformat = (.+)$", _UWSGI_INI, re.MULTILINE).group(1)
    for condition in ("if-not-env", "if-env")
)
# Each variable of the JSON layout and its field; the fields written unquoted are numbers, the literal ones constants.
_UWSGI_FIELDS = {var: field for field, var in re.findall(r'"(\w+)":"?%\(([\w.]+)\)', _UWSGI_JSON)}
_UWSGI_NUMBERS = {field for field, _ in re.findall(r'"(\w+)":%\(([\w.]+)\)', _UWSGI_JSON)}
_UWSGI_CONSTANTS = dict(re.findall(r'"(\w+)":"([^"%]*)"', _UWSGI_JSON))

# The default app's text formatter: its logging format string, and the JSON formatter's field for each attribute.
_APP_TEXT = re.search(
    r'"text": \{"format": "([^"]+)"\}', (ROOT / "app/microposts/settings.py").read_text(encoding="utf-8")
).group(1)
_APP_FIELDS = {
    "asctime": "time",
    "levelname": "level",
    "name": "logger",
    "request_id": "request_id",
    "message": "message",
}
_APP_CONSTANTS = {"source": "app"}


def _pattern(layout: str, variable: str, fields: dict[str, str], numbers: set[str], wide: dict[str, str]) -> re.Pattern:
    """A layout's lines as a regex with a named group per field: a number's digits, `wide`'s own pattern for a field
    that may hold spaces, else one word."""
    parts = re.split(variable, layout)
    regex = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            regex += re.escape(part)
            continue
        field = fields[part]
        regex += f"(?P<{field}>{r'-?[0-9]+' if field in numbers else wide.get(field, r'[^ ]*')})"
    return re.compile(regex)


_UWSGI_LINE = _pattern(_UWSGI_TEXT, r"%\(([\w.]+)\)", _UWSGI_FIELDS, _UWSGI_NUMBERS, {"path": ".*?"})
_APP_LINE = _pattern(_APP_TEXT, r"%\((\w+)\)s", _APP_FIELDS, set(), {"time": "[^ ]+ [^ ]+", "message": ".*"})


def json_record(line: str) -> dict | None:
    """A log line that is a JSON object, as one; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def record_of(line: str) -> dict | None:
    """One log line as a record: a JSON object, or a line of uWSGI's or the default app's text layout; None for any
    other line (uWSGI's own messages, another app's lines)."""
    if line.startswith("{"):
        return json_record(line)
    if found := _UWSGI_LINE.fullmatch(line):
        fields = {key: int(value) if key in _UWSGI_NUMBERS else value for key, value in found.groupdict().items()}
        return {**_UWSGI_CONSTANTS, **fields}
    if found := _APP_LINE.fullmatch(line):
        record = {**_APP_CONSTANTS, **found.groupdict()}
        record["level"] = record["level"].lower()
        return record
    return None


def log_records(text: str) -> list[dict]:
    """Every line of a log that is a record (record_of), in order."""
    return [record for line in text.splitlines() if (record := record_of(line)) is not None]

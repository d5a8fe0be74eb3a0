"""The ``sls`` connection form, defined once.

Airflow 3.2+ reads the form from ``conn-fields`` and ``ui-field-behaviour`` in
:func:`sls_provider.get_provider_info`; earlier releases ask the hook's
``get_connection_form_widgets()``/``get_ui_field_behaviour()``. Both are built from :data:`FIELDS` and
:data:`STANDARD_FIELDS` here, so the two cannot drift. This module imports nothing heavy: the
providers manager imports it to list connection types.

No field carries a ``default``: Airflow writes a form default into every connection's extra (and
its secret masker then warns about each short value in every task log). The defaults live in the
hook (:class:`~sls_provider.hooks.web_tracking.SlsWebTrackingHook`) and are shown as help text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ExtraField:
    """One field of the connection form, stored under its name in the connection's extra."""

    name: str
    label: str
    description: str
    example: str | None = None  # offered as the field's placeholder/suggestion
    required: bool = False
    choices: tuple[str, ...] = ()
    kind: str = "string"  # JSON schema type: "string" or "number"
    secret: bool = False

    def schema(self) -> dict[str, Any]:
        """The field's JSON schema (Airflow 3's form: a type without ``null`` is required)."""
        schema: dict[str, Any] = {"type": self.kind if self.required else [self.kind, "null"]}
        if self.choices:
            schema["enum"] = list(self.choices)
        if self.example is not None:
            schema["examples"] = [self.example]
        if self.secret:
            schema["format"] = "password"
        return schema


FIELDS: tuple[ExtraField, ...] = (
    ExtraField(
        "project",
        "Project",
        "Required: the SLS project (a hook or operator project= argument overrides it).",
        example="my-project",
        required=True,
    ),
    ExtraField(
        "logstore",
        "Logstore",
        "Required: the logstore, with web tracking switched on (logstore= overrides it).",
        example="web-events",
        required=True,
    ),
    ExtraField(
        "compress_type",
        "Compression",
        "Optional: lz4 (the default when empty), deflate or none.",
        choices=("lz4", "deflate", "none"),
    ),
    ExtraField(
        "timeout",
        "Timeout (seconds)",
        "Optional: seconds to connect and to wait for an answer, per try (default 30).",
        example="30",
        kind="number",
    ),
    ExtraField(
        "verify",
        "Verify TLS",
        "Optional: true (the default when empty), false, or the path of a CA bundle.",
        example="true",
    ),
    ExtraField(
        "security_token",
        "STS security token",
        "Optional: only with a temporary AccessKey from STS.",
        secret=True,
    ),
)

#: The standard fields. The port stays visible, and its label and placeholder ask for it: Airflow
#: 3.3.2's Test button sends ``port: 0`` for an empty port and its API then refuses the test ("The host
#: or port to test differs from the stored connection", shown as "Bad Request"), so a filled-in port
#: is what makes the Test button work. docs/connection.md ("In the UI") says so once for all.
HIDDEN_FIELDS: tuple[str, ...] = ("schema",)
RELABELING: dict[str, str] = {
    "host": "Endpoint",
    "port": "Port (for the Test button)",
    "login": "AccessKey ID",
    "password": "AccessKey Secret",
}
PLACEHOLDERS: dict[str, str] = {
    "host": "cn-hangzhou.log.aliyuncs.com (https) or http://127.0.0.1:9090",
    "port": "443 for https, 80 for http, else the endpoint's: the Test button needs it (Airflow 3.3.2)",
    "login": "optional: only the Test button and enable_web_tracking sign calls",
    "password": "optional",
}


def conn_fields() -> dict[str, dict[str, Any]]:
    """``conn-fields`` of the provider info (Airflow 3.2+)."""
    return {
        field.name: {"label": field.label, "description": field.description, "schema": field.schema()}
        for field in FIELDS
    }


def ui_field_behaviour() -> dict[str, Any]:
    """``ui-field-behaviour`` of the provider info (kebab-case keys, as in provider.yaml)."""
    return {
        "hidden-fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": dict(PLACEHOLDERS),
    }


def hook_field_behaviour() -> dict[str, Any]:
    """The same behaviour as the hook's ``get_ui_field_behaviour()`` returns it (Airflow before 3.2)."""
    placeholders = dict(PLACEHOLDERS)
    placeholders.update({field.name: field.example for field in FIELDS if field.example is not None})
    return {
        "hidden_fields": list(HIDDEN_FIELDS),
        "relabeling": dict(RELABELING),
        "placeholders": placeholders,
    }


def hook_widgets() -> dict[str, Any]:
    """The hook's ``get_connection_form_widgets()`` (Airflow before 3.2; needs the FAB UI's wtforms).

    Only the field classes Airflow accepts there (``StringField``, ``PasswordField``) are used; the
    hook checks the choices and numbers when it reads the connection.
    """
    from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import PasswordField, StringField
    from wtforms.validators import InputRequired, Optional

    widgets: dict[str, Any] = {}
    for field in FIELDS:
        kind = PasswordField if field.secret else StringField
        widget = BS3PasswordFieldWidget if field.secret else BS3TextFieldWidget
        widgets[field.name] = kind(
            lazy_gettext(field.label),
            widget=widget(),
            description=field.description,
            validators=[InputRequired() if field.required else Optional()],
        )
    return widgets

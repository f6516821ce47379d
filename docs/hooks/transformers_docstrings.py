"""A griffe extension for the API reference: reads the transformers docstring convention that the model's files
follow, so that mkdocstrings renders it rather than showing its markup.

transformers writes a parameter as ``name (`type` of shape `(a, b)`, *optional*, defaults to `x`):`` and a link as
``[`Name`]``. The Google-style parser would take the whole parenthesis as the type and show it verbatim; here the
type becomes the plain annotation and the rest opens the description ("Of shape ...; optional, defaults to ...").
"""

from __future__ import annotations

import re

import griffe

SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters|Attributes|Other Parameters):\s*$")
ENTRY = re.compile(r"^(\s*)(\*{0,2}\w+(?:, \w+)*) \((.*)\):\s*(.*)$")
LINK = re.compile(r"\[`~?([\w.]+)`\](?![\[(])")


def _entry(indent: str, name: str, inside: str, rest: str, in_signature: bool = False) -> str:
    default = re.search(r",\s*defaults to (.*)$", inside)
    head = re.split(r",\s*(?:\*optional\*|defaults to )", inside)[0]
    notes = []
    shape = re.match(r"(.*?)\s+of shape\s+(.*)", head)
    if shape:
        head, notes = shape.group(1), [f"of shape {shape.group(2)}"]
    # a parameter of the signature shows its default there already
    if "*optional*" in inside and not in_signature:
        notes.append("optional")
    if default and not in_signature:
        notes.append(f"defaults to {default.group(1)}")
    annotation = head.replace("`", "").replace("*", "").strip()
    lead = "; ".join(notes)
    lead = lead[:1].upper() + lead[1:] + "." if lead else ""
    return f"{indent}{name} ({annotation}): {' '.join(filter(None, [lead, rest]))}".rstrip()


def rewrite(text: str, signature: frozenset[str] = frozenset()) -> str:
    """The docstring with transformers' parameter entries and links in the form the Google-style parser reads;
    `signature` names the parameters whose defaults the rendered signature shows."""
    lines, section_indent = [], None
    for line in text.splitlines():
        opened = SECTION.match(line)
        if opened:
            section_indent = len(opened.group(1))
        elif section_indent is not None and line.strip() and len(line) - len(line.lstrip()) <= section_indent:
            section_indent = None
        entry = ENTRY.match(line) if section_indent is not None else None
        if entry and "`" in entry.group(3):
            line = _entry(*entry.groups(), in_signature=entry.group(2) in signature)
        lines.append(LINK.sub(r"`\1`", line))
    return "\n".join(lines)


class TransformersDocstrings(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            parameters = getattr(obj, "parameters", None) or []
            signature = frozenset(parameter.name for parameter in parameters if parameter.default is not None)
            obj.docstring.value = rewrite(obj.docstring.value, signature)

# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render plain data (what YAML/JSON can hold) as canonical, readable Nix.

Shared by the ``to_nix`` filter (controller) and the ``nixos_module`` module
(target host), so both produce byte-identical files for the same data.

Canonical means: attribute names sorted, two-space indentation, one
attribute per line, chains of single-key attrsets collapsed into attribute
paths (``services.openssh.enable = true;``) as nixpkgs users write them.

Raw Nix expressions (``pkgs.prometheus``, ``lib.mkForce false``) are written
with the escape hatch ``{"__nix_raw__": "<expression>"}``: a mapping whose
only key is ``__nix_raw__``. A plain string is always rendered as a Nix
string, so data can never turn into code by accident. The marker is plain
JSON on purpose: it survives the trip from the controller to a module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

RAW_KEY = "__nix_raw__"

# Nix integers are signed 64 bit.
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

# Identifiers that may stand unquoted as attribute names.
_BARE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_'-]*")
_KEYWORDS = frozenset(("if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"))
# A raw expression that needs no parentheses inside a list.
_SIMPLE_RAW = re.compile(r"[A-Za-z_][A-Za-z0-9_'.-]*")
# Characters that make an indented ('') string unsafe or unreadable.
_NOT_INDENTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\t\r]")

_INDENT = "  "
_INLINE_LIST_WIDTH = 80


class NixRenderError(ValueError):
    """Raised for data that has no faithful Nix representation."""


def raw(expression):
    """Return the escape-hatch marker for a raw Nix expression."""
    if not isinstance(expression, str) or not expression.strip():
        raise NixRenderError("a raw Nix expression must be a non-empty string, got %r" % (expression,))
    return {RAW_KEY: expression}


def is_raw(value):
    """True when ``value`` is the raw-expression marker."""
    return isinstance(value, Mapping) and len(value) == 1 and RAW_KEY in value


def _path(path):
    return ".".join(str(p) for p in path) or "<top>"


def quote_string(value):
    """A double-quoted Nix string literal for ``value``."""
    out = []
    for i, ch in enumerate(value):
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "$" and value[i + 1 : i + 2] == "{":
            out.append("\\$")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _indentable(value):
    """Whether ``value`` reads better, and round-trips, as an indented string."""
    if "\n" not in value or _NOT_INDENTABLE.search(value):
        return False
    lines = value.split("\n")
    body = lines[:-1] if lines[-1] == "" else lines
    # Whitespace-only lines and leading spaces on the first line would be
    # changed by Nix's indentation stripping.
    if any(line and not line.strip() for line in body):
        return False
    # Nix strips the indentation common to all lines: some line must have none.
    if all(line[:1] == " " for line in body if line):
        return False
    # A quote right before the ''${ escape, or a final quote before the
    # closing '', would be read as part of a ''' escape.
    if "'${" in value:
        return False
    return not (lines[-1] != "" and value.endswith("'"))


def _indented_string(value, level):
    pad = _INDENT * (level + 1)
    escaped = value.replace("''", "'''").replace("${", "''${")
    lines = escaped.split("\n")
    trailing_newline = lines[-1] == ""
    if trailing_newline:
        lines = lines[:-1]
    rendered = "''\n" + "\n".join(pad + line if line else "" for line in lines)
    if trailing_newline:
        return rendered + "\n" + _INDENT * level + "''"
    return rendered + "''"


def attr_name(name, path=()):
    """An attribute name, quoted only when Nix needs it."""
    if not isinstance(name, str):
        raise NixRenderError(
            "attribute names must be strings; %r (%s) at %s" % (name, type(name).__name__, _path(path))
        )
    if _BARE_NAME.fullmatch(name) and name not in _KEYWORDS:
        return name
    return quote_string(name)


def _scalar(value, path):
    """Render a scalar, or return None when ``value`` is not one."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise NixRenderError("integer %d at %s does not fit Nix's 64-bit integers" % (value, _path(path)))
        if value == _INT_MIN:
            # The literal 9223372036854775808 overflows before it is negated.
            return "(%d - 1)" % (_INT_MIN + 1)
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise NixRenderError("%r at %s has no Nix representation" % (value, _path(path)))
        text = repr(value)
        if "e" in text and "." not in text.split("e")[0]:
            mantissa, exponent = text.split("e")
            text = "%s.0e%s" % (mantissa, exponent)
        return text
    return None


def _needs_parens(text):
    return text.startswith("-")


def _render(value, level, path):
    scalar = _scalar(value, path)
    if scalar is not None:
        return scalar
    if isinstance(value, str):
        if "\x00" in value:
            raise NixRenderError("string at %s contains a NUL character, which Nix strings cannot hold" % _path(path))
        if _indentable(value):
            return _indented_string(value, level)
        return quote_string(value)
    if is_raw(value):
        expression = value[RAW_KEY]
        if not isinstance(expression, str) or not expression.strip():
            raise NixRenderError("raw Nix expression at %s must be a non-empty string" % _path(path))
        return expression
    if isinstance(value, Mapping):
        return _render_attrs(value, level, path)
    if isinstance(value, (list, tuple)):
        return _render_list(value, level, path)
    if isinstance(value, (bytes, bytearray)):
        raise NixRenderError("bytes at %s: decode them to a string first" % _path(path))
    raise NixRenderError("%s at %s has no Nix representation" % (type(value).__name__, _path(path)))


def _list_item(item, level, path):
    text = _render(item, level, path)
    if is_raw(item):
        return text if _SIMPLE_RAW.fullmatch(text) else "(" + text + ")"
    if _needs_parens(text):
        return "(" + text + ")"
    return text


def _render_list(value, level, path):
    if not value:
        return "[ ]"
    items = [_list_item(item, level + 1, (*path, i)) for i, item in enumerate(value)]
    inline = "[ " + " ".join(items) + " ]"
    if "\n" not in inline and len(inline) + len(_INDENT) * level <= _INLINE_LIST_WIDTH:
        return inline
    pad = _INDENT * (level + 1)
    return "[\n" + "".join(pad + item + "\n" for item in items) + _INDENT * level + "]"


def _collapse(key, value, path):
    """Follow single-key attrsets: ``a = { b = 1; }`` becomes ``a.b = 1``."""
    names = [attr_name(key, path)]
    path = (*path, key)
    while isinstance(value, Mapping) and len(value) == 1 and not is_raw(value):
        ((child_key, child_value),) = value.items()
        names.append(attr_name(child_key, path))
        path = (*path, child_key)
        value = child_value
    return ".".join(names), value, path


def _render_attrs(value, level, path):
    if not value:
        return "{ }"
    for key in value:
        attr_name(key, path)  # validates every key before sorting mixed types
    pad = _INDENT * (level + 1)
    lines = []
    for key in sorted(value):
        name, inner, inner_path = _collapse(key, value[key], path)
        lines.append("%s%s = %s;\n" % (pad, name, _render(inner, level + 1, inner_path)))
    return "{\n" + "".join(lines) + _INDENT * level + "}"


def to_nix(value):
    """Render ``value`` as a Nix expression (no trailing newline)."""
    return _render(value, 0, ())


def render_module(settings, header=None):
    """A complete NixOS module file: optional comment header, then
    ``{ config, lib, pkgs, ... }:`` and the settings as an attrset."""
    if not isinstance(settings, Mapping) or is_raw(settings):
        raise NixRenderError("module settings must be a mapping of NixOS options, got %s" % type(settings).__name__)
    text = ""
    if header:
        text += "".join(("# " + line).rstrip() + "\n" for line in header.splitlines())
    text += "{ config, lib, pkgs, ... }:\n" + to_nix(settings) + "\n"
    return text

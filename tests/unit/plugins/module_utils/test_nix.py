"""Unit tests of the Nix renderer shared by the to_nix filter and nixos_module."""

import math

import pytest

from ansible_collections.homelab.nixos.plugins.module_utils._nix import (
    RAW_KEY,
    NixRenderError,
    attr_name,
    quote_string,
    raw,
    render_module,
    to_nix,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-3, "-3"),
        (1.5, "1.5"),
        (1e-05, "1.0e-05"),
        (1e16, "1.0e+16"),
        (-2.5e-07, "-2.5e-07"),
        ("plain", '"plain"'),
        ("", '""'),
        ([], "[ ]"),
        ({}, "{ }"),
    ],
)
def test_scalars_and_empties(value, expected):
    assert to_nix(value) == expected


def test_attrsets_are_sorted_indented_and_collapsed():
    data = {"services": {"openssh": {"enable": True, "ports": [22, 2222]}}, "boot": {"kernelParams": ["a=1"]}}
    assert to_nix(data) == (
        "{\n"
        '  boot.kernelParams = [ "a=1" ];\n'
        "  services.openssh = {\n"
        "    enable = true;\n"
        "    ports = [ 22 2222 ];\n"
        "  };\n"
        "}"
    )


def test_attribute_names_quoted_only_when_needed():
    assert attr_name("enable") == "enable"
    assert attr_name("auto-optimise-store") == "auto-optimise-store"
    assert attr_name("x'") == "x'"
    assert attr_name("with") == '"with"'
    assert attr_name("or") == '"or"'
    assert attr_name("9lives") == '"9lives"'
    assert attr_name("a.b") == '"a.b"'
    assert attr_name("") == '""'
    assert attr_name("has space") == '"has space"'


def test_strings_escape_interpolation_and_specials():
    assert quote_string('a"b\\c') == '"a\\"b\\\\c"'
    assert quote_string("${pkgs.evil}") == '"\\${pkgs.evil}"'
    assert quote_string("$HOME and $ {x}") == '"$HOME and $ {x}"'
    assert quote_string("tab\there\r") == '"tab\\there\\r"'


def test_multiline_strings_use_indented_form():
    text = to_nix({"script": "echo one\n  echo ${two}\n\necho ''three''\n"})
    assert text == ("{\n  script = ''\n    echo one\n      echo ''${two}\n\n    echo '''three'''\n  '';\n}")


@pytest.mark.parametrize(
    "value",
    ["a\n \nb\n", "tab\tin\nline\n", "a\nends with quote'", "cr\r\nlf\n", " a\n b\n"],
)
def test_multiline_strings_that_would_not_round_trip_stay_quoted(value):
    assert to_nix(value).startswith('"')


def test_negative_numbers_are_parenthesised_in_lists():
    assert to_nix([-1, 2, -0.5]) == "[ (-1) 2 (-0.5) ]"


def test_long_lists_break_over_lines():
    value = ["x" * 30, "y" * 30, "z" * 30]
    assert to_nix(value) == '[\n  "%s"\n  "%s"\n  "%s"\n]' % tuple(value)


def test_raw_escape_hatch():
    assert to_nix({"package": raw("pkgs.prometheus")}) == "{\n  package = pkgs.prometheus;\n}"
    assert to_nix([raw("pkgs.git"), raw("lib.mkForce true")]) == "[ pkgs.git (lib.mkForce true) ]"
    # a plain string that looks like code stays a string
    assert to_nix("pkgs.prometheus") == '"pkgs.prometheus"'
    # a mapping with the marker key AND other keys is just an attrset
    assert to_nix({RAW_KEY: "x", "other": 1}).startswith('{\n  __nix_raw__ = "x";')


@pytest.mark.parametrize("bad", ["", "   ", 5, None])
def test_raw_rejects_empty_or_non_string(bad):
    with pytest.raises(NixRenderError):
        raw(bad)
    with pytest.raises(NixRenderError):
        to_nix({RAW_KEY: bad})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "nan"),
        ({"a": {"b": math.inf}}, "a.b"),
        ({"a": [1, -math.inf]}, "a.1"),
        ({1: "x"}, "attribute names must be strings"),
        ({"ok": {2: 3}}, "at ok"),
        (2**63, "64-bit"),
        (b"bytes", "decode"),
        ({"s": {1, 2}}, "set at s"),
    ],
)
def test_unrepresentable_input_fails_with_path(value, message):
    with pytest.raises(NixRenderError, match=message):
        to_nix(value)


def test_render_module_adds_header_and_arguments():
    text = render_module({"networking": {"hostName": "p620"}}, header="Managed by Ansible\nsecond line")
    assert text == (
        '# Managed by Ansible\n# second line\n{ config, lib, pkgs, ... }:\n{\n  networking.hostName = "p620";\n}\n'
    )


@pytest.mark.parametrize("bad", [[], "x", None, {RAW_KEY: "pkgs.x"}])
def test_render_module_requires_an_attrset(bad):
    with pytest.raises(NixRenderError, match="mapping"):
        render_module(bad)

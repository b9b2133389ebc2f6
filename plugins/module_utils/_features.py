# Copyright: homelab.nixos contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of a host's feature flags against the feature registry.

The registry (``roles/base/vars/feature_registry.yml``) maps dotted feature
names to ``{category, description, requires, conflicts, host_kinds}``. A host
declares the features it wants, as a list of names or a mapping of name to
boolean. Validation reports every problem at once: unknown names (with a
suggestion), requirements that are not enabled, conflicts (declared on
either side), features not meant for the host's kind, and an invalid kind.

Requirements are never added silently: a host's feature list is the whole
truth about what it runs, so a missing requirement is an error to fix there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
from collections.abc import Mapping

HOST_KINDS = ("workstation", "laptop", "server", "vm")
CATEGORIES = (
    "ai",
    "backup",
    "cloud",
    "development",
    "media",
    "monitoring",
    "networking",
    "operations",
    "programs",
    "security",
    "virtualization",
)
ENTRY_KEYS = frozenset(("category", "description", "requires", "conflicts", "host_kinds"))
# How similar (difflib ratio) a registry name must be to be suggested for an unknown one.
_CUTOFF = 0.75


class FeatureError(ValueError):
    """A host's features, or the registry itself, are invalid; ``problems`` lists every reason."""

    def __init__(self, problems):
        self.problems = list(problems)
        count = len(self.problems)
        plural = "" if count == 1 else "s"
        listing = "\n".join("- " + problem for problem in self.problems)
        super().__init__(f"{count} feature problem{plural}:\n{listing}")


def _quoted(names):
    return ", ".join(f"'{name}'" for name in names)


def suggestions(name, known, limit=3):
    """Registry names close to ``name``: same last part(s) first, then difflib's close matches."""
    if not isinstance(name, str):
        return []
    found = [k for k in sorted(known) if k.endswith("." + name)]
    for match in difflib.get_close_matches(name, sorted(known), n=limit, cutoff=_CUTOFF):
        if match not in found:
            found.append(match)
    return found[:limit]


def _did_you_mean(name, known):
    close = suggestions(name, known)
    if not close:
        return ""
    return " (did you mean " + " or ".join(f"'{c}'" for c in close) + "?)"


def _string_list(entry, key, name, problems):
    value = entry.get(key, [])
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        problems.append(f"registry: '{name}'.{key} must be a list of names, got {value!r}")
        return []
    good = []
    for item in value:
        if isinstance(item, str):
            good.append(item)
        else:
            problems.append(f"registry: '{name}'.{key} holds {item!r}, which is not a feature name")
    return good


def registry_problems(registry):
    """Everything wrong with the registry itself, as a list of strings (empty when it is consistent).

    Checks each entry's keys, category (one of CATEGORIES and the name's first
    part), description, host_kinds (a non-empty subset of HOST_KINDS), that
    every ``requires``/``conflicts`` target exists and is not the feature
    itself, that a feature's kinds are allowed by what it requires, and that
    no feature requires two features that conflict.
    """
    if not isinstance(registry, Mapping):
        return [f"registry: must be a mapping of feature name to entry, got {type(registry).__name__}"]
    problems = []
    requires = {}
    conflicts = {}
    kinds = {}
    for name in sorted(registry, key=str):
        entry = registry[name]
        if not isinstance(name, str) or not name:
            problems.append(f"registry: feature name {name!r} is not a non-empty string")
            continue
        if not isinstance(entry, Mapping):
            problems.append(f"registry: '{name}' must be a mapping, got {type(entry).__name__}")
            continue
        extra = sorted(set(entry) - ENTRY_KEYS, key=str)
        if extra:
            problems.append(f"registry: '{name}' has unknown keys {_quoted(extra)}")
        category = entry.get("category")
        if category not in CATEGORIES:
            problems.append(f"registry: '{name}' has category {category!r}, not one of {', '.join(CATEGORIES)}")
        elif name.split(".")[0] != category:
            problems.append(f"registry: '{name}' is in category '{category}' but not named '{category}.*'")
        description = entry.get("description")
        if not isinstance(description, str) or not description.strip():
            problems.append(f"registry: '{name}' needs a description")
        host_kinds = _string_list(entry, "host_kinds", name, problems) if "host_kinds" in entry else list(HOST_KINDS)
        bad_kinds = [k for k in host_kinds if k not in HOST_KINDS]
        if bad_kinds:
            problems.append(
                f"registry: '{name}' has unknown host kinds {_quoted(bad_kinds)} (known: {', '.join(HOST_KINDS)})"
            )
        elif not host_kinds:
            problems.append(f"registry: '{name}' has an empty host_kinds list: it could never be enabled")
        kinds[name] = set(host_kinds)
        requires[name] = _string_list(entry, "requires", name, problems)
        conflicts[name] = _string_list(entry, "conflicts", name, problems)
        for key, targets in (("requires", requires[name]), ("conflicts", conflicts[name])):
            for target in targets:
                if target == name:
                    problems.append(f"registry: '{name}' {key} itself")
                elif target not in registry:
                    problems.append(
                        f"registry: '{name}' {key} unknown feature '{target}'{_did_you_mean(target, registry)}"
                    )
        both = sorted(set(requires[name]) & set(conflicts[name]))
        if both:
            problems.append(f"registry: '{name}' both requires and conflicts with {_quoted(both)}")
    if problems:
        return problems

    for name in sorted(requires):
        for target in requires[name]:
            missing = sorted(kinds[name] - kinds[target])
            if missing:
                where = ", ".join(k for k in HOST_KINDS if k in missing)
                problems.append(f"registry: '{name}' is allowed on {where} but requires '{target}', which is not")
    pairs = _conflict_pairs(conflicts)
    for name in sorted(requires):
        closure = _closure(name, requires)
        clashing = sorted(pair for pair in pairs if pair[0] in closure and pair[1] in closure)
        for a, b in clashing:
            problems.append(f"registry: '{name}' can never be enabled: it needs both '{a}' and '{b}', which conflict")
    return problems


def _closure(name, requires):
    """``name`` and everything it requires, directly or not."""
    seen = set()
    pending = [name]
    while pending:
        current = pending.pop()
        if current not in seen:
            seen.add(current)
            pending.extend(requires.get(current, ()))
    return seen


def _conflict_pairs(conflicts):
    """Conflicts as sorted pairs, whichever side declared them."""
    return {tuple(sorted((name, other))) for name, others in conflicts.items() for other in others}


def _parse_host_features(host_features, problems):
    """(declared names, enabled names) of a host; malformed input is described in ``problems``."""
    declared = set()
    enabled = set()
    if host_features is None:
        return declared, enabled
    if isinstance(host_features, Mapping):
        for name, value in host_features.items():
            if not isinstance(name, str):
                problems.append(f"feature name {name!r} is not a string")
                continue
            declared.add(name)
            if not isinstance(value, bool):
                problems.append(f"feature '{name}' must be set to true or false, got {value!r}")
            elif value:
                enabled.add(name)
    elif isinstance(host_features, (list, tuple, set, frozenset)):
        for name in host_features:
            if isinstance(name, str):
                declared.add(name)
                enabled.add(name)
            else:
                problems.append(f"feature name {name!r} is not a string")
    else:
        kind = type(host_features).__name__
        problems.append(f"host features must be a list of names or a mapping of name to true/false, got {kind}")
    return declared, enabled


def enabled_features(host_features):
    """The sorted names a host turns on: a list of names, a mapping of name to boolean
    (only true ones count) or None (no features). FeatureError for malformed input."""
    problems = []
    enabled = _parse_host_features(host_features, problems)[1]
    if problems:
        raise FeatureError(problems)
    return sorted(enabled)


def feature_problems(host_features, registry, host_kind):
    """Every problem with a host's features, as a list of strings (empty when they are valid).

    A broken registry is reported alone (its problems start with ``registry:``):
    checking hosts against it would only add noise. Unknown names are reported
    even when set to false, since they are most likely typos.
    """
    problems = registry_problems(registry)
    if problems:
        return problems
    declared, enabled = _parse_host_features(host_features, problems)

    kind_ok = isinstance(host_kind, str) and host_kind in HOST_KINDS
    if not kind_ok:
        close = difflib.get_close_matches(host_kind, HOST_KINDS, n=1) if isinstance(host_kind, str) else []
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        problems.append(f"host kind {host_kind!r} is not one of {', '.join(HOST_KINDS)}{hint}")

    for name in sorted(declared - set(registry)):
        problems.append(f"unknown feature '{name}'{_did_you_mean(name, registry)}")
    known = sorted(name for name in enabled if name in registry)

    for name in known:
        missing = [r for r in registry[name].get("requires") or () if r not in enabled]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            problems.append(f"'{name}' requires {_quoted(missing)}, which {verb} not enabled")

    pairs = _conflict_pairs({name: registry[name].get("conflicts") or () for name in known})
    for a, b in sorted(pairs):
        if a in enabled and b in enabled:
            problems.append(f"'{a}' conflicts with '{b}': enable only one")

    if kind_ok:
        for name in known:
            allowed = registry[name].get("host_kinds") or HOST_KINDS
            if host_kind not in allowed:
                problems.append(f"'{name}' is not meant for {host_kind} hosts (allowed on: {', '.join(allowed)})")
    return problems


def validate_features(host_features, registry, host_kind):
    """The sorted list of a host's enabled features; FeatureError listing every problem otherwise."""
    problems = feature_problems(host_features, registry, host_kind)
    if problems:
        raise FeatureError(problems)
    return enabled_features(host_features)

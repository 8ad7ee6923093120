"""The taxonomy page (canonical events, each with every vendor name mapped to it) and the
settings page (every ``ENGAGEHUB_*`` variable with its docstring)."""

from __future__ import annotations

from collections import defaultdict

from pydantic_core import PydanticUndefined

from engagehub.settings import GROUPS, Settings
from engagehub.taxonomy import Taxonomy, get_taxonomy


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def vendor_names(taxonomy: Taxonomy) -> dict[str, list[str]]:
    """Canonical event -> ``vendor: `name` `` entries, from every vendor mapping file."""
    found: dict[str, list[str]] = defaultdict(list)
    for vendor, mapping in sorted(taxonomy.vendors.items()):
        for name, rule in mapping.rules.items():
            if rule.custom:
                continue
            if rule.event:
                extra = ", ".join(f"{k}={v}" for k, v in rule.set.items())
                found[rule.event].append(
                    f"{vendor}: `{name}`" + (f" ({_cell(extra)})" if extra else "")
                )
            for channel, event in rule.by_channel.items():
                found[event].append(f"{vendor}: `{name}` (channel {channel})")
    return found


def taxonomy_page() -> str:
    """Markdown of the whole taxonomy, grouped by channel."""
    taxonomy = get_taxonomy()
    names = vendor_names(taxonomy)
    out = [
        "# Canonical taxonomy",
        "",
        "Every event in the log carries its vendor's name (`vendor_event`) and, when the name is",
        "known, one **canonical** name (`event`) from this list: one event per channel and action,",
        "named in the Segment Engage style. The table is generated from",
        "`engagehub/taxonomy/data/` when the docs are built; `engagehub taxonomy` and",
        "`GET /api/taxonomy` serve the same data. Segment sources may send canonical names",
        "directly (they map to themselves). A name missing here is stored with `event = NULL`,",
        "counted in `GET /api/events/unmapped` and `engagehub_unmapped_events`, never dropped.",
        "",
        f"Taxonomy version **{taxonomy.version}** · {len(taxonomy.events)} canonical events · "
        f"{sum(len(m.rules) for m in taxonomy.vendors.values())} vendor names.",
        "",
    ]
    by_channel: dict[str, list[str]] = defaultdict(list)
    for event in taxonomy.events.values():
        by_channel[event.channel].append(event.name)
    for channel, meaning in taxonomy.channels.items():
        if channel not in by_channel:
            continue
        out += [f"## {channel}", "", _cell(meaning), ""]
        out += ["| event | action | meaning | vendor names |", "|---|---|---|---|"]
        for name in by_channel[channel]:
            event = taxonomy.events[name]
            mapped = "<br>".join(names.get(name, [])) or "—"
            out.append(f"| **{name}** | {event.action} | {_cell(event.description)} | {mapped} |")
        out.append("")
    out += ["## Properties", "", "| property | meaning | vendor spellings |", "|---|---|---|"]
    spellings: dict[str, list[str]] = defaultdict(list)
    for vendor, mapping in sorted(taxonomy.vendors.items()):
        for given, canonical in mapping.properties.items():
            spellings[canonical].append(f"{vendor}: `{given}`")
    for prop, meaning in taxonomy.properties.items():
        listed = ", ".join(spellings.get(prop, [])) or "—"
        out.append(f"| `{prop}` | {_cell(meaning)} | {listed} |")
    out += ["", "## Channel spellings", "", "| vendors send | channel |", "|---|---|"]
    for alias, channel in sorted(taxonomy.channel_aliases.items()):
        out.append(f"| `{alias}` | {channel} |")
    return "\n".join(out) + "\n"


def env_name(field: str) -> str:
    """The environment variable of a settings field."""
    return "ENGAGEHUB_" + field.upper()


def _type_name(annotation: object) -> str:
    """``int`` rather than ``<class 'int'>``; unions and literals as Python writes them."""
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("pydantic.types.", "")


def settings_page() -> str:
    """Every setting, one table per feature group: variable, type, default, meaning."""
    out = [
        "# Settings",
        "",
        "Every setting is an environment variable (CLI flags such as `--database-url`, `--port`",
        "override them). Generated from `engagehub/settings.py` when the docs are built; each",
        "section is one group of it.",
    ]
    for group in GROUPS:
        title = group.__name__.removesuffix("Settings")
        out += ["", f"## {title}", "", _cell(group.__doc__ or ""), ""]
        out += ["| variable | type | default | meaning |", "|---|---|---|---|"]
        for name in (n for n in group.__annotations__ if n in Settings.model_fields):
            field = Settings.model_fields[name]
            default = field.default
            shown = "—" if default is None or default is PydanticUndefined else f"`{default}`"
            kind = _cell(_type_name(field.annotation))
            meaning = _cell(field.description or "")
            out.append(f"| `{env_name(name)}` | {kind} | {shown} | {meaning} |")
    return "\n".join(out) + "\n"

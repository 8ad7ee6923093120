"""The vendor reference page, generated from the vendor registry (``vendors.VENDORS``)."""

from __future__ import annotations

from engagehub.vendors import VENDORS


def vendors_page() -> str:
    """Every source kind: what it receives, its webhook routes, how each request is verified."""
    lines = [
        "# Vendors and source kinds",
        "",
        "Generated from the vendor registry (`engagehub/vendors/`, one module per vendor): a",
        "source is created for one of these kinds (`engagehub sources add --kind KIND`, or",
        "`POST /api/sources`), and receives on the routes listed.",
        "",
        "| kind | receives | module |",
        "|---|---|---|",
    ]
    for kind, vendor in VENDORS.items():
        module = getattr(vendor, "__name__", kind).replace(".", "/")
        lines.append(f"| `{kind}` | {vendor.DESCRIPTION} | `{module}.py` |")
    lines += [
        "",
        "## Ingest routes",
        "",
        "| route | kind | what | verified by | answer |",
        "|---|---|---|---|---|",
    ]
    for kind, vendor in VENDORS.items():
        for hook in vendor.WEBHOOKS:
            if hook.write_key is not None:
                check = "write key" + ("" if hook.signed_body else " header (before the body)")
            elif hook.signed_body:
                check = "signature over the body"
            else:
                check = "bearer token (before the body)"
            reply = (
                f"`{hook.reply_media_type}` ({hook.reply_description})"
                if hook.reply
                else f"{hook.status} JSON: `success`"
                + (", `accepted`" if hook.count else "")
                + (", 400 when any is bad" if hook.partial == "refuse" else "")
            )
            limit = f"; at most {hook.max_events} events" if hook.max_events else ""
            lines.append(
                f"| `POST {hook.route}` | `{kind}` | {hook.summary}{limit} | {check} | {reply} |"
            )
    lines.append("")
    return "\n".join(lines)

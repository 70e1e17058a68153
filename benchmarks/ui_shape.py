"""The Gradio apps' shape (chat and admin console) as JSON, to show a refactor of ui/ left
what the browser sees unchanged: a benchmark of structure, not speed.

    .venv/bin/python benchmarks/ui_shape.py dump OUT.json [CHECKOUT]   # CHECKOUT: default this one
    .venv/bin/python benchmarks/ui_shape.py compare BEFORE.json AFTER.json

Both apps are built on an empty knowledge base in a temporary folder (no model is loaded).
Gradio numbers components and events in the order they are made, so a component is named
here by its place in the layout (depth-first) with its type, elem_id and label, and an event
by its trigger, inputs, outputs and options with those names; `compare` then says whether
the two dumps are the same tree with the same wiring, in the same order.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

THIS_CHECKOUT = Path(__file__).resolve().parents[1]
ADDRESS = re.compile(r" at 0x[0-9a-f]+")
# Per-build values, not shape: Gradio's own numbering and the class hash of each component.
UNSTABLE_KEYS = {"id", "component_class_id", "rendered_in", "render_id", "app_id"}


def _plain(value: Any) -> Any:
    """JSON-able, without memory addresses (a State's delete callback prints one)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items() if k not in UNSTABLE_KEYS}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN
        return "NaN"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return ADDRESS.sub("", value) if isinstance(value, str) else value
    return ADDRESS.sub("", repr(value))


def _name(component: dict, place: int) -> str:
    props = component.get("props", {})
    label = props.get("label")
    label = getattr(label, "key", label)  # an I18N("key") label: its key
    text = props.get("value") if component["type"] == "button" else None
    tag = props.get("elem_id") or label or (text if isinstance(text, str) else "")
    return f"#{place} {component['type']}" + (f" {tag}" if tag else "")


def shape(demo) -> dict:
    """The app's layout, components and events, with Gradio's ids replaced by stable names."""
    config = demo.get_config_file()
    by_id = {c["id"]: c for c in config["components"]}
    names: dict[int, str] = {}

    def walk(node: dict) -> dict:
        place = len(names)
        names[node["id"]] = _name(by_id[node["id"]], place) if node["id"] in by_id else f"#{place} root"
        return {"name": names[node["id"]], "children": [walk(child) for child in node.get("children", [])]}

    layout = walk(config["layout"])
    for component in config["components"]:  # anything outside the layout, in creation order
        names.setdefault(component["id"], _name(component, len(names)) + " (not in layout)")
    components = {names[c["id"]]: _plain(c) for c in config["components"]}

    functions = [demo.fns[dependency["id"]] for dependency in config["dependencies"]]
    # Events whose handler is the same object share one concurrency group in Gradio's queue
    # (named by the handler's id, different in every build): name a group by its events.
    groups: dict[str, list[int]] = {}
    for index, function in enumerate(functions):
        groups.setdefault(function.concurrency_id, []).append(index)
    events: list[dict] = []
    for dependency, function in zip(config["dependencies"], functions):
        event = _plain(dependency)
        event["targets"] = [[names.get(target, "the app"), kind] for target, kind in dependency["targets"]]
        event["inputs"] = [names[i] for i in dependency["inputs"]]
        event["outputs"] = [names[i] for i in dependency["outputs"]]
        after = dependency.get("trigger_after")
        event["trigger_after"] = None if after is None else _event_title(events[after])
        event["cancels"] = [_event_title(events[c]) for c in dependency.get("cancels", [])]
        event["handler"] = getattr(function.fn, "__name__", None)  # internal: reported, not compared
        event["parameters"] = _parameters(function.fn)
        # The queue's options live on the function, not in the config.
        event["concurrency_limit"] = function.concurrency_limit
        own_group = function.concurrency_id == str(id(function.fn))
        event["concurrency_group"] = f"events {groups[function.concurrency_id]}" if own_group else function.concurrency_id
        event["tracks_progress"] = function.tracks_progress
        event["preprocess"], event["postprocess"] = function.preprocess, function.postprocess
        events.append(event)
    return {"layout": layout, "components": components, "events": events}


def _parameters(handler) -> list[str]:
    """The handler's positional parameters as Gradio fills them: "input" from the event's
    inputs, or what it injects by annotation or default (gr.Request, event data, gr.Progress)."""
    import inspect

    import gradio as gr
    from gradio import utils

    if handler is None:
        return []
    hints = utils.get_type_hints(handler)
    kinds = []
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break
        hint = hints.get(parameter.name)
        if isinstance(parameter.default, gr.Progress):
            kinds.append("progress")
        elif hint in (gr.Request, gr.Request | None):
            kinds.append("request")
        elif isinstance(hint, type) and issubclass(hint, gr.EventData):
            kinds.append(hint.__name__)
        else:
            kinds.append("input" if parameter.default is inspect.Parameter.empty else "input (optional)")
    return kinds


def _event_title(event: dict) -> str:
    targets = ", ".join(f"{t}.{kind}" for t, kind in event["targets"])
    return f"{targets} -> {event['api_name']}"


def dump(out: Path, checkout: Path) -> None:
    sys.path.insert(0, str(checkout))  # before any first-party import: the checkout inspected
    from app.service import KnowledgeBase
    from app.settings import Settings
    from ui.admin import build_admin
    from ui.chat import build_app

    print(f"building the apps of {Path(build_app.__code__.co_filename).parents[1]}")
    with tempfile.TemporaryDirectory(prefix="mmkb-ui-shape-") as folder:
        kb = KnowledgeBase(Settings(data_dir=Path(folder), database_url=None))
        try:
            shapes = {"chat": shape(build_app(kb)), "admin": shape(build_admin(kb))}
        finally:
            kb.close()
    out.write_text(json.dumps(shapes, indent=1, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    for app_name, found in shapes.items():
        print(f"{app_name}: {len(found['components'])} components, {len(found['events'])} events -> {out}")


def _compared(events: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "handler"} for e in events]


def _wiring_verdict(same_order: bool, unordered: bool) -> str:
    if same_order:
        return "same wiring in the same order"
    return "same wiring, another order" if unordered else "DIFFERENT wiring"


def compare(before_path: Path, after_path: Path) -> int:
    before = json.loads(before_path.read_text(encoding="utf-8"))
    after = json.loads(after_path.read_text(encoding="utf-8"))
    differences = 0
    for app_name in sorted(before.keys() | after.keys()):
        old, new = before.get(app_name), after.get(app_name)
        if old is None or new is None:
            print(f"{app_name}: only in {'after' if old is None else 'before'}")
            differences += 1
            continue
        same_layout = old["layout"] == new["layout"]
        names = old["components"].keys() | new["components"].keys()
        changed = sorted(n for n in names if old["components"].get(n) != new["components"].get(n))
        old_events, new_events = _compared(old["events"]), _compared(new["events"])
        same_order = old_events == new_events
        unordered = sorted(map(json.dumps, old_events)) == sorted(map(json.dumps, new_events))
        renamed = sum(a["handler"] != b["handler"] for a, b in zip(old["events"], new["events"])) if same_order else None
        print(
            f"{app_name}: layout {'same' if same_layout else 'DIFFERENT'}; "
            f"components {len(old['components'])} -> {len(new['components'])}, {len(changed)} differ; "
            f"events {len(old_events)} -> {len(new_events)}, "
            + _wiring_verdict(same_order, unordered)
            + (f" ({renamed} handler functions renamed, api_name unchanged)" if renamed else "")
        )
        for name in changed[:20]:
            print(f"  component differs: {name}")
        if not unordered:
            for event in [e for e in old_events if e not in new_events][:10]:
                print(f"  only before: {_event_title(event)}")
            for event in [e for e in new_events if e not in old_events][:10]:
                print(f"  only after:  {_event_title(event)}")
        differences += (not same_layout) + len(changed) + (not unordered)
    return 1 if differences else 0


def main(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[0] == "dump":
        dump(Path(argv[1]), Path(argv[2]).resolve() if len(argv) == 3 else THIS_CHECKOUT)
        return 0
    if len(argv) == 3 and argv[0] == "compare":
        return compare(Path(argv[1]), Path(argv[2]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

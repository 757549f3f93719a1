"""`kubectl wait`, and the watch-based waiting that `delete` and `rollout status` share.

Every wait follows the object with a watch (list, then watch from that resourceVersion) and
has a deadline; nothing polls.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any, AsyncIterator, Callable

import trio

from components.common import kinds
from components.common.apiclient import ApiClient, ApiError
from harness.kubectl import flags, jsonpath, printers, resources
from harness.kubectl.context import KubectlContext
from harness.kubectl.errors import KubectlError, report
from harness.kubectl.flags import Flag

FLAGS = (
    Flag("for", kind=flags.STRING, default=""),
    Flag("timeout", kind=flags.DURATION, default=30.0),
    Flag("selector", "l", flags.STRING, ""),
    Flag("field-selector", kind=flags.STRING, default=""),
    Flag("all", kind=flags.BOOL),
    Flag("all-namespaces", "A", flags.BOOL),
    Flag("filename", "f", flags.STRINGS),
    Flag("output", "o", flags.STRING, ""),
)

FOREVER = 7 * 24 * 3600.0  # kubectl's "a week" for a negative timeout


async def object_states(api: ApiClient, kind: kinds.Kind, namespace: str | None, name: str
                        ) -> AsyncIterator[dict[str, Any] | None]:
    """The object as it changes: its current state first, None whenever it does not exist."""
    events = api.reflect(kind.api_version, kind.kind, resources.namespace_of(kind, namespace),
                         field_selector=f"metadata.name={name}")
    async with aclosing(events):
        async for event_type, obj in events:
            if event_type == "SYNC":
                items = [o for o in obj.get("items") or [] if o.get("metadata", {}).get("name") == name]
                yield items[0] if items else None
            elif event_type == "DELETED":
                yield None
            else:
                yield obj


async def until(api: ApiClient, kind: kinds.Kind, namespace: str | None, name: str,
                done: Callable[[dict[str, Any] | None], bool], timeout: float) -> dict[str, Any] | None:
    """Wait until `done(state)` holds; raises TimeoutError after `timeout` seconds."""
    with trio.move_on_after(timeout):
        states = object_states(api, kind, namespace, name)
        async with aclosing(states):
            async for state in states:
                if done(state):
                    return state
    raise TimeoutError


def gone(uid: str | None) -> Callable[[dict[str, Any] | None], bool]:
    """The object is deleted (or replaced by a new one of the same name)."""
    return lambda state: state is None or (uid is not None and state["metadata"].get("uid") != uid)


def condition_met(condition: str, value: str) -> Callable[[dict[str, Any] | None], bool]:
    def check(state: dict[str, Any] | None) -> bool:
        if state is None:
            return False
        for cond in (state.get("status") or {}).get("conditions") or []:
            if str(cond.get("type", "")).lower() == condition.lower():
                return str(cond.get("status", "")).lower() == value.lower()
        return False
    return check


def jsonpath_met(template: jsonpath.JSONPath, value: str | None) -> Callable[[dict[str, Any] | None], bool]:
    def check(state: dict[str, Any] | None) -> bool:
        if state is None:
            return False
        try:
            found = [v for group in template.find_results(state) for v in group]
        except jsonpath.JSONPathError:
            return False
        if value is None:
            return bool(found)
        if len(found) != 1 or isinstance(found[0], (dict, list)):
            return False
        return jsonpath.format_results(found) == value
    return check


def _split_jsonpath(spec: str) -> tuple[str, str | None]:
    """`{.status.phase}=Running` -> ("{.status.phase}", "Running"); the `=` that separates them
    is the first one outside braces and quotes."""
    depth, quote = 0, ""
    for i, ch in enumerate(spec):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "=" and depth == 0:
            return spec[:i], spec[i + 1:].strip("'\"")
    return spec, None


def parse_for(spec: str) -> Callable[[str | None], Callable[[dict[str, Any] | None], bool]]:
    """--for: a factory of the check, given the UID of the object waited for."""
    if spec == "delete":
        return gone
    if spec.startswith("condition="):
        condition, _, value = spec[len("condition="):].partition("=")
        check = condition_met(condition, value or "true")
        return lambda uid: check
    if spec.startswith("jsonpath="):
        expression, value = _split_jsonpath(spec[len("jsonpath="):])
        if value == "":
            raise KubectlError("jsonpath wait has to have a value after equal sign, like "
                               "--for=jsonpath='{.status.readyReplicas}'=3")
        try:
            template = jsonpath.JSONPath(jsonpath.relaxed(expression), allow_missing_keys=False)
        except jsonpath.JSONPathError as exc:
            raise KubectlError(str(exc)) from exc
        check = jsonpath_met(template, value)
        return lambda uid: check
    raise KubectlError(f"unrecognized condition: {spec!r}")


async def _targets(args: list[str], parsed: flags.Parsed, ctx: KubectlContext, namespace: str | None
                   ) -> list[tuple[kinds.Kind, dict[str, Any] | None, str, str | None]]:
    """(kind, object or None if absent, name, namespace) of everything to wait for."""
    selection = resources.select(args)
    if not selection.requests:
        raise KubectlError("resource(s) were provided, but no name was specified")
    targets = []
    for kind, names in selection.requests:
        if names:
            for name in names:
                obj, error = await resources.get_or_error(ctx.api, kind, namespace, name)
                if error is not None and error.code != 404:
                    raise error
                if error is not None and parsed["for"] != "delete":
                    raise error
                targets.append((kind, obj, name, namespace))
        elif parsed["all"] or parsed["selector"] or parsed["field-selector"] or parsed["all-namespaces"]:
            for obj in await resources.list_items(ctx.api, kind, namespace, label_selector=parsed["selector"],
                                                  field_selector=parsed["field-selector"]):
                targets.append((kind, obj, obj["metadata"]["name"], obj["metadata"].get("namespace")))
        else:
            raise KubectlError("resource(s) were provided, but no name was specified")
    return targets


async def run(parsed: flags.Parsed, ctx: KubectlContext) -> int:
    if not parsed["for"]:
        raise KubectlError("--for must be set to one of: delete, condition=condition-name, "
                           "jsonpath='{JSONPath expression}'=JSONPath Condition")
    make_check = parse_for(parsed["for"])
    timeout = parsed["timeout"] if parsed["timeout"] >= 0 else FOREVER
    namespace = None if parsed["all-namespaces"] else parsed["namespace"]
    targets = await _targets(parsed.args, parsed, ctx, namespace)
    if not targets:
        raise KubectlError("no matching resources found")
    for kind, obj, name, ns in targets:
        if obj is None:
            continue
        uid = obj["metadata"].get("uid")
        check = make_check(uid)
        ref = f"{printers.resource_name(kind)}/{name}"
        if not check(obj):
            try:
                await until(ctx.api, kind, ns, name, check, timeout)
            except TimeoutError:
                return report([KubectlError(f"timed out waiting for the condition on {kind.plural}/{name}")],
                              ctx.stderr)
            except ApiError as exc:
                return report([exc], ctx.stderr, ctx.api.address)
        if parsed["output"] == "name":
            ctx.stdout.write(ref + "\n")
        else:
            ctx.stdout.write(f"{ref} condition met\n")
    return 0

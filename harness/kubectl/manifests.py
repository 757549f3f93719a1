"""Reading `-f` sources: files, directories, `-` (stdin) and URLs, each a stream of YAML
documents or JSON objects; `kind: List` is flattened into its items.

Documents are split and parsed one by one as kubectl does, so a broken document stops its
source there (the objects before it are still used) and YAML error lines count from the
start of that document.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import trio
import yaml

from harness.kubectl import mirrors
from harness.kubectl.context import KubectlContext, emit
from harness.kubectl.errors import KubectlError

EXTENSIONS = (".json", ".yaml", ".yml")
FETCH_TIMEOUT = 10.0


@dataclass
class Item:
    source: str          # the file as the user named it, "STDIN" or the URL
    obj: dict[str, Any]


class Loader(yaml.SafeLoader):
    """YAML as kubectl reads it: converted to JSON, so timestamps stay strings and keys are strings."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    pairs = loader.construct_pairs(node, deep=True)
    return {k if isinstance(k, str) else _key_text(k): v for k, v in pairs}


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


Loader.add_constructor("tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node))
Loader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)

_GO_YAML_MESSAGES = (
    ("mapping values are not allowed here", "mapping values are not allowed in this context"),
    ("that cannot start any token", "found character that cannot start any token"),
    ("expected <block end>", "did not find expected key"),
    ("expected ',' or '}'", "did not find expected ',' or '}'"),
    ("expected ',' or ']'", "did not find expected ',' or ']'"),
    ("found undefined alias", "unknown anchor referenced"),
    ("could not find expected ':'", "could not find expected ':'"),
    ("found unexpected end of stream", "found unexpected end of stream"),
)


def _yaml_error(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None) or str(exc)
    for pyyaml, goyaml in _GO_YAML_MESSAGES:
        if pyyaml in problem:
            problem = goyaml
            break
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return f"yaml: line {mark.line + 1}: {problem}"
    return f"yaml: {problem}"


def split_documents(text: str) -> list[str]:
    """k8s.io/apimachinery's YAML reader: a line starting with `---` separates documents."""
    documents, current = [], []
    for line in text.splitlines(keepends=True):
        if line.startswith("---"):
            trailer = line[3:].strip()
            if trailer and not trailer.startswith("#"):
                raise KubectlError(f"invalid Yaml document separator: {trailer}")
            if current:
                documents.append("".join(current))
                current = []
            continue
        current.append(line)
    if current:
        documents.append("".join(current))
    return documents


def _go_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "number"


def _check(source: str, obj: Any) -> list[Item]:
    if not isinstance(obj, dict):
        raise KubectlError(f'unable to decode "{source}": json: cannot unmarshal {_go_type(obj)} into Go value '
                           "of type map[string]interface {}")
    missing = [f"{key} not set" for key in ("apiVersion", "kind") if not obj.get(key)]
    if missing:
        listed = missing[0] if len(missing) == 1 else "[" + ", ".join(missing) + "]"
        raise KubectlError(f'error validating "{source}": error validating data: {listed}; if you choose to '
                           "ignore these errors, turn validation off with --validate=false")
    if obj["kind"] == "List" or (obj["kind"].endswith("List") and isinstance(obj.get("items"), list)):
        items: list[Item] = []
        for entry in obj.get("items") or []:
            items.extend(_check(source, entry))
        return items
    return [Item(source, obj)]


def parse(data: bytes, source: str) -> tuple[list[Item], list[KubectlError]]:
    """The objects of one source, and the error that stopped it (if any)."""
    items: list[Item] = []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return items, [KubectlError(f"error parsing {source}: {exc}")]
    stripped = text.lstrip()
    try:
        if stripped.startswith("{"):
            decoder, pos = json.JSONDecoder(), 0
            while True:
                while pos < len(stripped) and stripped[pos].isspace():
                    pos += 1
                if pos >= len(stripped):
                    break
                try:
                    obj, pos = decoder.raw_decode(stripped, pos)
                except json.JSONDecodeError as exc:
                    return items, [KubectlError(f"error parsing {source}: {exc.msg}")]
                items.extend(_check(source, obj))
            return items, []
        for document in split_documents(text):
            try:
                obj = yaml.load(document, Loader=Loader)
            except yaml.YAMLError as exc:
                return items, [KubectlError(f"error parsing {source}: error converting YAML to JSON: "
                                            f"{_yaml_error(exc)}")]
            if obj is not None:
                items.extend(_check(source, obj))
    except KubectlError as exc:
        return items, [exc]
    return items, []


def mapping_error(item: Item) -> KubectlError:
    """kubectl's error for an object of a kind the server does not serve."""
    meta = item.obj.get("metadata") or {}
    return KubectlError(f'resource mapping not found for name: "{meta.get("name", "")}" namespace: '
                        f'"{meta.get("namespace", "")}" from "{item.source}": no matches for kind '
                        f'"{item.obj["kind"]}" in version "{item.obj["apiVersion"]}"\nensure CRDs are installed first')


def _expand(path: Path, shown: str, recursive: bool, top: bool) -> list[tuple[Path, str]]:
    if not path.is_dir():
        return [(path, shown)]
    found: list[tuple[Path, str]] = []
    for entry in sorted(path.iterdir()):
        name = f"{shown.rstrip('/')}/{entry.name}"
        if entry.is_dir():
            if recursive:
                found.extend(_expand(entry, name, recursive, False))
        elif entry.suffix in EXTENSIONS:
            found.append((entry, name))
    if top and not found:
        raise KubectlError(f"error reading [{shown}]: recognized file extensions are [.json .yaml .yml]")
    return found


class Unreachable(KubectlError):
    """The URL's server could not be reached (as opposed to answering an error)."""


def _fetch(url: str) -> bytes:
    try:
        # A fresh opener reads the proxy settings of the environment at each call.
        with urllib.request.build_opener().open(url, timeout=FETCH_TIMEOUT) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise KubectlError(f'unable to read URL "{url}", server reported {exc.code} {exc.reason}, '
                           f"status code={exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f'Get "{url}": {reason}') from exc


async def fetch_url(url: str, stderr: TextIO, samples: Path = mirrors.SAMPLES) -> bytes:
    """The body at `url`; when the URL cannot be reached within FETCH_TIMEOUT and is a well-known
    sample mirrored under `samples`, the local copy, with one line on stderr saying so."""
    try:
        with trio.fail_after(FETCH_TIMEOUT):
            return await trio.to_thread.run_sync(_fetch, url, abandon_on_cancel=True)
    except (Unreachable, trio.TooSlowError) as exc:
        reason = str(exc) if isinstance(exc, Unreachable) else f'Get "{url}": timeout after {FETCH_TIMEOUT:g}s'
        copy = mirrors.local_copy(url, samples)
        if copy is None:
            raise KubectlError(reason) from exc
        emit(stderr, f"warning: could not fetch {url} ({reason}); applying the local mirror {copy} instead\n")
        return copy.read_bytes()


async def read(filenames: list[str], ctx: KubectlContext, recursive: bool = False
               ) -> tuple[list[Item], list[KubectlError]]:
    """All objects of the `-f` sources, in order, with the errors met on the way.

    A path that does not exist fails the whole command, as in kubectl."""
    sources: list[tuple[str, Path | None]] = []
    for name in filenames:
        if name == "-" or re.match(r"^https?://", name):
            sources.append((name, None))
            continue
        path = Path(name).expanduser()
        if not path.is_absolute():
            path = ctx.cwd / path
        if not path.exists():
            raise KubectlError(f'the path "{name}" does not exist')
        sources.extend((shown, p) for p, shown in _expand(path, name, recursive, True))
    items: list[Item] = []
    errors: list[KubectlError] = []
    for name, path in sources:
        if path is not None:
            try:
                data = path.read_bytes()
            except OSError as exc:
                errors.append(KubectlError(f"error reading {name}: {exc.strerror}"))
                continue
            source = name
        elif name == "-":
            data = await trio.to_thread.run_sync(ctx.stdin.read)
            source = "STDIN"
        else:
            data = await fetch_url(name, ctx.stderr)
            source = name
        found, failed = parse(data, source)
        items.extend(found)
        errors.extend(failed)
    return items, errors

"""Parser of ``nft -j list ruleset`` output (the libnftables-json(5) schema) into ``NftRuleset``.

Accepts list output (``{"nftables": [{"metainfo": ...}, {"table": ...}, {"chain": ...},
{"rule": ...}, {"set": ...}, ...]}``) and, for hand-written JSON rulesets, the command forms
``{"add": OBJECT}`` / ``{"create": OBJECT}`` / ``{"insert": RULE}`` (taken as list objects in
order). Statements and expressions are kept as frozen JSON (``journey.model.nft.JMap``): the
engine interprets them, unknown ones are shown verbatim and marked uncertain there. This parser
only checks the structure it relies on; every error names the JSON path, e.g.
``nftables[12].rule.expr[3]``. A metainfo ``json_schema_version`` above 1 is refused (the
schema may have changed incompatibly).

Pure: no I/O (takes the text), no textual, no rich.
"""

from __future__ import annotations

import gc
import json
from typing import Any

from journey.errors import RuleParseError
from journey.model.nft import (
    FAMILIES,
    JSON,
    JMap,
    NftChain,
    NftElement,
    NftFlowtable,
    NftObject,
    NftRule,
    NftRuleset,
    NftSet,
    NftTable,
    freeze,
    thaw,
)

__all__ = ["SUPPORTED_SCHEMA", "parse_nft_json", "parse_nft_obj"]

SUPPORTED_SCHEMA = 1
_OBJECT_KINDS = ("counter", "quota", "limit", "ct helper", "ct timeout", "ct expectation",
                 "secmark", "synproxy")
_CMDS = ("add", "create", "insert")


class _Ctx:
    __slots__ = ("source",)

    def __init__(self, source: str) -> None:
        self.source = source

    def err(self, path: str, msg: str) -> RuleParseError:
        return RuleParseError(msg, file=self.source, field=path)


def parse_nft_json(text: str, *, source: str = "nft -j list ruleset",
                   render_text: bool = True) -> NftRuleset:
    """Parse the JSON text. ``render_text`` fills each rule's ``text`` (nft syntax)."""
    if not text.strip():
        return NftRuleset(source=source)
    # Objects are frozen while decoding (one pass). The collector is paused meanwhile: a big
    # dump creates ~10 objects per rule, all kept, and generational collections would rescan
    # them again and again (this halves the parse time of a 60k-rule dump).
    enabled = gc.isenabled()
    gc.disable()
    try:
        data = json.loads(text, object_pairs_hook=_frozen_object)
        return _parse(data, source, render_text)
    except json.JSONDecodeError as e:
        raise RuleParseError(f"not JSON: {e.msg}", file=source, line=e.lineno) from None
    finally:
        if enabled:
            gc.enable()


def _tl(v: list[Any]) -> tuple[JSON, ...]:
    return tuple(_tl(x) if type(x) is list else x for x in v)


_new = object.__new__
_setattr = object.__setattr__


def _frozen_object(pairs: list[tuple[str, Any]]) -> JMap:
    for _k, v in pairs:
        if type(v) is list:
            items = tuple((k, _tl(x) if type(x) is list else x) for k, x in pairs)
            break
    else:
        items = tuple(pairs)
    m = _new(JMap)
    _setattr(m, "items", items)  # JMap(items) without the frozen dataclass __init__ overhead
    return m


def parse_nft_obj(data: Any, *, source: str = "nft -j list ruleset",
                  render_text: bool = True) -> NftRuleset:
    """Parse already-decoded JSON (``{"nftables": [...]}``)."""
    try:
        frozen = freeze(data)
    except TypeError as e:
        raise RuleParseError(str(e), file=source, field="(top)") from None
    return _parse(frozen, source, render_text)


def _parse(data: JSON, source: str, render_text: bool) -> NftRuleset:
    cx = _Ctx(source)
    if not isinstance(data, JMap) or "nftables" not in data:
        raise cx.err("(top)", 'expected an object {"nftables": [...]}')
    items = data["nftables"]
    if not isinstance(items, tuple):
        raise cx.err("nftables", "expected a list")
    version: str | None = None
    schema: int | None = None
    tables: dict[tuple[str, str], dict[str, Any]] = {}
    order: list[tuple[str, str]] = []
    chains: dict[tuple[str, str, str], dict[str, Any]] = {}

    def table_of(path: str, fam: str, name: str) -> dict[str, Any]:
        key = (fam, name)
        t = tables.get(key)
        if t is None:
            # objects may come before their table in hand-written input: create it implicitly
            t = {"handle": None, "flags": (), "chains": [], "sets": [], "flowtables": [],
                 "objects": [], "path": path}
            tables[key] = t
            order.append(key)
        return t

    for i, item in enumerate(items):
        path = f"nftables[{i}]"
        if not isinstance(item, JMap) or len(item) != 1:
            raise cx.err(path, "expected an object with exactly one key")
        kind, fbody = item.items[0]
        if kind in _CMDS:
            if not isinstance(fbody, JMap) or len(fbody) != 1:
                raise cx.err(f"{path}.{kind}", "expected an object with exactly one key")
            path = f"{path}.{kind}"
            kind, fbody = fbody.items[0]
        p = f"{path}.{kind}"
        if not isinstance(fbody, JMap):
            raise cx.err(p, "expected an object")
        body: dict[str, Any] = dict(fbody.items)
        if kind == "metainfo":
            if not isinstance(body, dict):
                raise cx.err(p, "expected an object")
            v = body.get("json_schema_version")
            if v is not None:
                if not isinstance(v, int) or isinstance(v, bool):
                    raise cx.err(f"{p}.json_schema_version", "expected a number")
                if v > SUPPORTED_SCHEMA:
                    raise cx.err(f"{p}.json_schema_version",
                                 f"JSON schema version {v} is newer than the supported "
                                 f"version {SUPPORTED_SCHEMA}: this nftables output may use "
                                 "constructs journey does not understand")
                schema = v
            ver = body.get("version")
            version = str(ver) if ver is not None else None
            continue
        if not isinstance(body, dict):
            raise cx.err(p, "expected an object")
        if kind == "table":
            fam, name = _family(cx, p, body), _str(cx, p, body, "name")
            t = table_of(path, fam, name)
            t["handle"] = _opt_int(cx, p, body, "handle")
            t["flags"] = _strs(cx, p, body, "flags")
            t["path"] = path
        elif kind == "chain":
            fam, tname, name = _family(cx, p, body), _str(cx, p, body, "table"), _str(cx, p, body, "name")
            t = table_of(path, fam, tname)
            hook = body.get("hook")
            if hook is not None and not isinstance(hook, str):
                raise cx.err(f"{p}.hook", "expected a string")
            prio = body.get("prio")
            if hook is not None and (not isinstance(prio, int) or isinstance(prio, bool)):
                raise cx.err(f"{p}.prio", "a base chain needs a numeric priority")
            dev = body.get("dev")
            devices: tuple[str, ...] = ()
            if isinstance(dev, str):
                devices = (dev,)
            elif isinstance(dev, tuple):
                devices = tuple(str(d) for d in dev)
            c: dict[str, Any] = {"name": name, "handle": _opt_int(cx, p, body, "handle"),
                 "type": body.get("type"), "hook": hook, "prio": prio if hook else None,
                 "policy": body.get("policy") if hook else None, "devices": devices,
                 "rules": [], "path": path}
            if (fam, tname, name) in chains:
                old = chains[(fam, tname, name)]
                c["rules"] = old["rules"]
                t["chains"].remove(old)
            chains[(fam, tname, name)] = c
            t["chains"].append(c)
        elif kind == "rule":
            fam, tname, cname = (_family(cx, p, body), _str(cx, p, body, "table"),
                                 _str(cx, p, body, "chain"))
            expr = body.get("expr")
            if not isinstance(expr, tuple):
                raise cx.err(f"{p}.expr", "expected a list of statements")
            stmts = tuple(_stmt(cx, f"{p}.expr[{j}]", s) for j, s in enumerate(expr))
            ch = chains.get((fam, tname, cname))
            if ch is None:
                t = table_of(path, fam, tname)
                ch = {"name": cname, "handle": None, "type": None, "hook": None, "prio": None,
                      "policy": None, "devices": (), "rules": [], "path": path}
                chains[(fam, tname, cname)] = ch
                t["chains"].append(ch)
            comment = body.get("comment")
            ch["rules"].append((stmts, _opt_int(cx, p, body, "handle"),
                                str(comment) if comment is not None else None, path))
        elif kind in ("set", "map", "meter"):
            fam, tname, name = _family(cx, p, body), _str(cx, p, body, "table"), _str(cx, p, body, "name")
            t = table_of(path, fam, tname)
            t["sets"].append(_set(cx, p, path, kind, fam, tname, name, body))
        elif kind == "element":
            fam, tname, name = _family(cx, p, body), _str(cx, p, body, "table"), _str(cx, p, body, "name")
            t = table_of(path, fam, tname)
            elems = _elements(cx, f"{p}.elem", body.get("elem"), None)
            for k, s in enumerate(t["sets"]):
                if s.name == name:
                    t["sets"][k] = _with_elems(s, s.elements + elems)
                    break
            else:
                raise cx.err(f"{p}.name", f"no set {name!r} in table {fam} {tname}")
        elif kind == "flowtable":
            fam, tname, name = _family(cx, p, body), _str(cx, p, body, "table"), _str(cx, p, body, "name")
            t = table_of(path, fam, tname)
            dev = body.get("dev")
            devs = (dev,) if isinstance(dev, str) else tuple(str(d) for d in dev) if isinstance(dev, tuple) else ()
            prio = body.get("prio")
            t["flowtables"].append(NftFlowtable(
                family=fam, table=tname, name=name, hook=body.get("hook"),
                priority=prio if isinstance(prio, int) else None, devices=devs,
                handle=_opt_int(cx, p, body, "handle"), path=path))
        elif kind in _OBJECT_KINDS:
            fam, tname, name = _family(cx, p, body), _str(cx, p, body, "table"), _str(cx, p, body, "name")
            t = table_of(path, fam, tname)
            props = JMap(tuple((k, v) for k, v in fbody.items
                               if k not in ("family", "table", "name", "handle")))
            t["objects"].append(NftObject(kind=kind, family=fam, table=tname, name=name,
                                          props=props, handle=_opt_int(cx, p, body, "handle"),
                                          path=path))
        else:
            # unknown list objects (newer nftables): ignored here, but never silently wrong
            # for rules: rules only reference what they need.
            continue

    render = None
    if render_text:
        from journey.model.nft_text import rule_text

        render = rule_text
    out_tables: list[NftTable] = []
    for fam, name in order:
        t = tables[(fam, name)]
        out_chains: list[NftChain] = []
        for c in t["chains"]:
            rules: list[NftRule] = []
            for idx, (stmts, handle, comment, rpath) in enumerate(c["rules"], 1):
                r = NftRule(family=fam, table=name, chain=c["name"], handle=handle, index=idx,
                            exprs=stmts, comment=comment, path=rpath)
                if render is not None:
                    r = _with_text(r, render(r))
                rules.append(r)
            out_chains.append(NftChain(
                family=fam, table=name, name=c["name"], handle=c["handle"], type=c["type"],
                hook=c["hook"], priority=c["prio"], policy=c["policy"], devices=c["devices"],
                rules=tuple(rules), path=c["path"]))
        out_tables.append(NftTable(
            family=fam, name=name, handle=t["handle"], flags=t["flags"], chains=tuple(out_chains),
            sets=tuple(t["sets"]), flowtables=tuple(t["flowtables"]),
            objects=tuple(t["objects"]), path=t["path"]))
    return NftRuleset(tables=tuple(out_tables), version=version, json_schema_version=schema,
                      source=source)


def _with_text(r: NftRule, text: str) -> NftRule:
    return NftRule(family=r.family, table=r.table, chain=r.chain, handle=r.handle, index=r.index,
                   exprs=r.exprs, comment=r.comment, path=r.path, text=text)


def _with_elems(s: NftSet, elems: tuple[NftElement, ...]) -> NftSet:
    return NftSet(family=s.family, table=s.table, name=s.name, type=s.type, handle=s.handle,
                  map_type=s.map_type, flags=s.flags, elements=elems, timeout=s.timeout,
                  gc_interval=s.gc_interval, size=s.size, policy=s.policy, typeof=s.typeof,
                  kind=s.kind, path=s.path)


# -- helpers -------------------------------------------------------------------------------------

def _family(cx: _Ctx, p: str, body: dict[str, Any]) -> str:
    fam = body.get("family")
    if not isinstance(fam, str):
        raise cx.err(f"{p}.family", "missing or not a string")
    if fam not in FAMILIES:
        raise cx.err(f"{p}.family", f"unknown family {fam!r} (expected one of {', '.join(FAMILIES)})")
    return fam


def _str(cx: _Ctx, p: str, body: dict[str, Any], key: str) -> str:
    v = body.get(key)
    if not isinstance(v, str):
        raise cx.err(f"{p}.{key}", "missing or not a string")
    return v


def _opt_int(cx: _Ctx, p: str, body: dict[str, Any], key: str) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, int) or isinstance(v, bool):
        raise cx.err(f"{p}.{key}", f"expected a number, got {json.dumps(thaw(v))}")
    return v


def _strs(cx: _Ctx, p: str, body: dict[str, Any], key: str) -> tuple[str, ...]:
    v = body.get(key)
    if v is None:
        return ()
    if isinstance(v, str):
        return (v,)
    if isinstance(v, tuple) and all(isinstance(x, str) for x in v):
        return tuple(str(x) for x in v)
    raise cx.err(f"{p}.{key}", "expected a string or a list of strings")


def _stmt(cx: _Ctx, p: str, s: JSON) -> JSON:
    if not isinstance(s, JMap) or len(s) != 1:
        raise cx.err(p, f"a statement must be an object with exactly one key, got "
                        f"{json.dumps(thaw(s))[:80]}")
    kind, body = s.items[0]
    if kind == "match":
        if not isinstance(body, JMap) or "left" not in body or "right" not in body:
            raise cx.err(f"{p}.match", "needs left and right")
        op = body.get("op", "==")
        if op not in ("==", "!=", "<", ">", "<=", ">=", "in", "⇐", "&", "|", "^", "<<", ">>"):
            raise cx.err(f"{p}.match.op", f"unknown operator {op!r}")
    elif kind in ("jump", "goto") and (not isinstance(body, JMap)
                                       or not isinstance(body.get("target"), str)):
        raise cx.err(f"{p}.{kind}.target", "missing chain name")
    return s


def _type(cx: _Ctx, p: str, v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        return tuple(x.strip() for x in v.split(" . "))
    if isinstance(v, tuple) and all(isinstance(x, str) for x in v):
        return tuple(str(x) for x in v)
    if v is None:
        return ()
    raise cx.err(p, "expected a type name or a list of type names")


def _set(cx: _Ctx, p: str, path: str, kind: str, fam: str, tname: str, name: str,
         body: dict[str, Any]) -> NftSet:
    typ = _type(cx, f"{p}.type", body.get("type"))
    mt = body.get("map")
    map_type = _type(cx, f"{p}.map", mt) if mt is not None else None
    if kind == "map" and map_type is None:
        raise cx.err(f"{p}.map", "a map needs the type of its values")
    elems = _elements(cx, f"{p}.elem", body.get("elem"), map_type)
    size = _opt_int(cx, p, body, "size")
    timeout = _opt_int(cx, p, body, "timeout")
    return NftSet(family=fam, table=tname, name=name, type=typ, handle=_opt_int(cx, p, body, "handle"),
                  map_type=map_type, flags=_strs(cx, p, body, "flags"), elements=elems,
                  timeout=timeout, gc_interval=_opt_int(cx, p, body, "gc-interval"), size=size,
                  policy=body.get("policy"), typeof=body.get("typeof"),
                  kind="map" if map_type is not None and kind != "meter" else kind, path=path)


def _elements(cx: _Ctx, p: str, v: Any, map_type: tuple[str, ...] | None) -> tuple[NftElement, ...]:
    if v is None:
        return ()
    items = v if isinstance(v, tuple) else (v,)
    out: list[NftElement] = []
    for i, it in enumerate(items):
        ip = f"{p}[{i}]"
        data: JSON = None
        if map_type is not None:
            if not isinstance(it, tuple) or len(it) != 2:
                raise cx.err(ip, "a map element must be a [key, value] pair")
            it, data = it
        out.append(_element(cx, ip, it, data))
    return tuple(out)


def _element(cx: _Ctx, p: str, it: JSON, data: JSON) -> NftElement:
    if isinstance(it, JMap) and "elem" in it and len(it) == 1:
        e = it["elem"]
        if not isinstance(e, JMap) or "val" not in e:
            raise cx.err(f"{p}.elem", "needs val")
        t, x, c = e.get("timeout"), e.get("expires"), e.get("comment")
        return NftElement(key=e["val"], data=data,
                          timeout=t if isinstance(t, int) else None,
                          expires=x if isinstance(x, int) else None,
                          comment=str(c) if c is not None else None)
    return NftElement(key=it, data=data)

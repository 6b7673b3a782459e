"""nftables rules, statements and expressions as nft syntax, the way ``nft list ruleset`` prints them.

Works on the frozen libnftables-json values of ``journey.model.nft``. Unknown statements and
expressions are printed as their JSON text (so nothing is hidden). Used by the nft parser (the
``text`` of each rule), the engine (the failed condition of a rule, as nft text) and the
renderers.

Pure: depends on ``journey.model`` only; no I/O, no textual, no rich.
"""

from __future__ import annotations

import json

from journey.model.nft import JSON, JMap, NftChain, NftRule, NftSet, thaw

__all__ = [
    "chain_header",
    "expr_text",
    "rule_text",
    "set_text",
    "stmt_text",
]

# keys nft prints without the "meta" prefix
_BARE_META = frozenset({"iif", "oif", "iifname", "oifname", "iiftype", "oiftype", "iifgroup",
                        "oifgroup", "mark_unused"})
_HEX_KEYS = frozenset({"meta mark", "ct mark", "meta priority_unused"})
_IFNAME_KEYS = frozenset({"meta iif", "meta oif", "meta iifname", "meta oifname",
                          "meta ibrname", "meta obrname", "meta sdifname", "fib oifname"})
_PRIO_NAMES = {-300: "raw", -150: "mangle", -100: "dstnat", 0: "filter", 50: "security",
               100: "srcnat"}


def _raw(v: JSON) -> str:
    return json.dumps(thaw(v), separators=(",", ":"))


def _quote(s: str) -> str:
    return '"' + s.replace('"', '\\"') + '"'


def _key(expr: JSON) -> str:
    """A short key for value formatting: "meta mark", "ct mark", "meta iifname", ..."""
    if isinstance(expr, JMap):
        one = expr.single()
        if one is not None:
            kind, body = one
            if kind in ("meta", "ct") and isinstance(body, JMap):
                return f"{kind} {body.get('key')}"
            if kind == "fib" and isinstance(body, JMap):
                return f"fib {body.get('result')}"
            if kind in ("&", "|", "^", "<<", ">>") and isinstance(body, tuple) and body:
                return _key(body[0])
    return ""


def value_text(v: JSON, key: str = "") -> str:
    """An immediate value in the context of ``key`` (hex marks, quoted interface names)."""
    if isinstance(v, bool):
        if key.startswith("fib"):
            return "exists" if v else "missing"
        return "exists" if v else "missing"
    if isinstance(v, int):
        if key in _HEX_KEYS:
            return f"0x{v:08x}"
        return str(v)
    if isinstance(v, str):
        if key in _IFNAME_KEYS:
            return _quote(v)
        if v.startswith("@") or v == "*":
            return v
        if any(c in v for c in ' \t"{}'):
            return _quote(v)
        return v
    if v is None or isinstance(v, float):
        return _raw(v)  # not an nft value: shown as JSON (expr_text would come back here)
    return expr_text(v, key)


def expr_text(e: JSON, key: str = "") -> str:
    """An expression (left or right side of a match, a statement argument)."""
    if e is None or isinstance(e, bool | int | float | str):
        return value_text(e, key)
    if isinstance(e, tuple):
        return ",".join(expr_text(x, key) for x in e)
    one = e.single()
    if one is None:
        if "elem" in e or "val" in e:
            return _elem_text(e, key)
        return _raw(e)
    kind, body = one
    fn = _EXPR.get(kind)
    if fn is None:
        return _raw(e)
    try:
        return str(fn(body, key))
    except (AttributeError, TypeError, ValueError, KeyError):
        return _raw(e)


def _b(body: JSON) -> JMap:
    if not isinstance(body, JMap):
        raise TypeError("object expected")
    return body


def _payload(body: JSON, key: str) -> str:
    b = _b(body)
    if "protocol" in b:
        return f"{b.get('protocol')} {b.get('field')}"
    return f"@{b.get('base')},{b.get('offset')},{b.get('len')}"


def _meta(body: JSON, key: str) -> str:
    k = str(_b(body).get("key"))
    return k if k in _BARE_META else f"meta {k}"


def _ct(body: JSON, key: str) -> str:
    b = _b(body)
    parts = ["ct"]
    if b.get("dir") is not None:
        parts.append(str(b.get("dir")))
    if b.get("family") is not None:
        parts.append(str(b.get("family")))
    parts.append(str(b.get("key")))
    return " ".join(parts)


def _fib(body: JSON, key: str) -> str:
    b = _b(body)
    flags = b.get("flags")
    fl = list(flags) if isinstance(flags, tuple) else ([flags] if flags is not None else [])
    return f"fib {' . '.join(str(f) for f in fl)} {b.get('result')}"


def _concat(body: JSON, key: str) -> str:
    if not isinstance(body, tuple):
        raise TypeError("list expected")
    return " . ".join(expr_text(x) for x in body)


def _set(body: JSON, key: str) -> str:
    items = body if isinstance(body, tuple) else (body,)
    out = []
    for it in items:
        if isinstance(it, tuple) and len(it) == 2:
            out.append(f"{expr_text(it[0], key)} : {_data_text(it[1])}")
        else:
            out.append(expr_text(it, key))
    return "{ " + ", ".join(out) + " }"


def _data_text(v: JSON) -> str:
    if isinstance(v, JMap):
        one = v.single()
        if one is not None and one[0] in _VERDICTS:
            return _verdict_text(one[0], one[1])
    return expr_text(v)


def _map(body: JSON, key: str) -> str:
    b = _b(body)
    return f"{expr_text(b.get('key'))} map {expr_text(b.get('data'))}"


def _prefix(body: JSON, key: str) -> str:
    b = _b(body)
    return f"{expr_text(b.get('addr'))}/{b.get('len')}"


def _range(body: JSON, key: str) -> str:
    if not isinstance(body, tuple) or len(body) != 2:
        raise TypeError("range of two")
    return f"{expr_text(body[0], key)}-{expr_text(body[1], key)}"


def _binop(op: str):  # type: ignore[no-untyped-def]
    def fn(body: JSON, key: str) -> str:
        if not isinstance(body, tuple) or len(body) != 2:
            raise TypeError("two operands")
        k = _key(body[0]) if op in ("&", "|", "^") else ""
        right = body[1]
        if isinstance(right, tuple):
            rt = " | ".join(expr_text(x, k) for x in right)
            rt = f"({rt})" if len(right) > 1 else rt
        else:
            rt = expr_text(right, k)
        return f"{expr_text(body[0])} {op} {rt}"
    return fn


def _numgen(body: JSON, key: str) -> str:
    b = _b(body)
    s = f"numgen {b.get('mode')} mod {b.get('mod')}"
    if b.get("offset"):
        s += f" offset {b.get('offset')}"
    return s


def _jhash(body: JSON, key: str) -> str:
    b = _b(body)
    s = f"jhash {expr_text(b.get('expr'))} mod {b.get('mod')}"
    seed = b.get("seed")
    if isinstance(seed, int):
        s += f" seed {seed:#x}"
    if b.get("offset"):
        s += f" offset {b.get('offset')}"
    return s


def _symhash(body: JSON, key: str) -> str:
    b = _b(body)
    s = f"symhash mod {b.get('mod')}"
    if b.get("offset"):
        s += f" offset {b.get('offset')}"
    return s


def _elem_text(b: JMap, key: str) -> str:
    s = expr_text(b.get("val"), key)
    if b.get("timeout") is not None:
        s += f" timeout {_dur(b.get('timeout'))}"
    if b.get("expires") is not None:
        s += f" expires {_dur(b.get('expires'))}"
    if b.get("comment") is not None:
        s += f" comment {_quote(str(b.get('comment')))}"
    return s


def _elem(body: JSON, key: str) -> str:
    return _elem_text(_b(body), key)


def _dur(v: JSON) -> str:
    if not isinstance(v, int):
        return str(v)
    out = ""
    for unit, sec in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if v >= sec:
            out += f"{v // sec}{unit}"
            v %= sec
    return out or "0s"


def _exthdr(body: JSON, key: str) -> str:
    b = _b(body)
    return f"exthdr {b.get('name')}" + (f" {b.get('field')}" if b.get("field") else "")


def _tcpopt(body: JSON, key: str) -> str:
    b = _b(body)
    return f"tcp option {b.get('name')}" + (f" {b.get('field')}" if b.get("field") else "")


def _sctpchunk(body: JSON, key: str) -> str:
    b = _b(body)
    return f"sctp chunk {b.get('name')}" + (f" {b.get('field')}" if b.get("field") else "")


def _rt(body: JSON, key: str) -> str:
    b = _b(body)
    fam = f"{b.get('family')} " if b.get("family") else ""
    return f"rt {fam}{b.get('key')}"


def _socket(body: JSON, key: str) -> str:
    return f"socket {_b(body).get('key')}"


def _osf(body: JSON, key: str) -> str:
    b = _b(body)
    ttl = f"ttl {b.get('ttl')} " if b.get("ttl") else ""
    return f"osf {ttl}{b.get('key')}"


def _ipsec(body: JSON, key: str) -> str:
    b = _b(body)
    return f"ipsec {b.get('dir')} {b.get('key')}"


def _verdict_expr(kind: str):  # type: ignore[no-untyped-def]
    def fn(body: JSON, key: str) -> str:
        return _verdict_text(kind, body)
    return fn


_EXPR = {
    "payload": _payload, "meta": _meta, "ct": _ct, "fib": _fib, "concat": _concat,
    "set": _set, "map": _map, "prefix": _prefix, "range": _range,
    "&": _binop("&"), "|": _binop("|"), "^": _binop("^"), "<<": _binop("<<"),
    ">>": _binop(">>"), "numgen": _numgen, "jhash": _jhash, "symhash": _symhash,
    "elem": _elem, "exthdr": _exthdr, "tcp option": _tcpopt, "sctp chunk": _sctpchunk,
    "rt": _rt, "socket": _socket, "osf": _osf, "ipsec": _ipsec,
    "accept": _verdict_expr("accept"), "drop": _verdict_expr("drop"),
    "continue": _verdict_expr("continue"), "return": _verdict_expr("return"),
    "jump": _verdict_expr("jump"), "goto": _verdict_expr("goto"),
}

_VERDICTS = frozenset({"accept", "drop", "continue", "return", "jump", "goto", "queue"})


def _verdict_text(kind: str, body: JSON) -> str:
    if kind in ("jump", "goto") and isinstance(body, JMap):
        return f"{kind} {body.get('target')}"
    return kind


# -- statements ---------------------------------------------------------------------------------

def _match(body: JSON) -> str:
    b = _b(body)
    left, right, op = b.get("left"), b.get("right"), str(b.get("op", "=="))
    k = _key(left)
    lt = expr_text(left)
    if isinstance(right, tuple):
        rt = ",".join(expr_text(x, k) for x in right)
    else:
        rt = expr_text(right, k)
    if isinstance(right, bool):  # fib ... oif missing / exthdr exists
        return f"{lt} {rt}" if op == "==" else f"{lt} {op} {rt}"
    if isinstance(left, JMap) and left.single() is not None and left.items[0][0] in (
            "&", "|", "^", "<<", ">>"):
        return f"{lt} {'==' if op == 'in' else op} {rt}"
    if op in ("==", "in"):
        return f"{lt} {rt}"
    if op == "<=":
        op = "<="
    return f"{lt} {op} {rt}"


def _counter(body: JSON) -> str:
    if isinstance(body, str):
        return f"counter name {_quote(body)}"
    if isinstance(body, JMap):
        return f"counter packets {body.get('packets', 0)} bytes {body.get('bytes', 0)}"
    return "counter"


def _mangle(body: JSON) -> str:
    b = _b(body)
    k = b.get("key")
    return f"{expr_text(k)} set {expr_text(b.get('value'), _key(k))}"


def _nat(kind: str):  # type: ignore[no-untyped-def]
    def fn(body: JSON) -> str:
        if body is None:
            return kind
        b = _b(body)
        parts = [kind]
        if b.get("family") is not None:
            parts.append(str(b.get("family")))
        addr, port = b.get("addr"), b.get("port")
        if addr is not None or port is not None:
            parts.append("to")
            a = ""
            if addr is not None:
                a = expr_text(addr)
                if ":" in a and port is not None and not a.endswith(("]", "}")) \
                        and b.get("family") == "ip6":
                    a = f"[{a}]"
            if port is not None:
                a += f":{expr_text(port)}"
            parts.append(a)
        flags = b.get("flags")
        if flags is not None:
            parts.append(",".join(str(f) for f in flags) if isinstance(flags, tuple) else str(flags))
        return " ".join(parts)
    return fn


def _reject(body: JSON) -> str:
    if not isinstance(body, JMap):
        return "reject"
    t, e = body.get("type"), body.get("expr")
    if t == "tcp reset":
        return "reject with tcp reset"
    if t == "icmpx" and e == "port-unreachable":
        return "reject"
    if t is None and e is None:
        return "reject"
    if e is None:
        return f"reject with {t}"
    return f"reject with {t} {expr_text(e)}"


def _log(body: JSON) -> str:
    if not isinstance(body, JMap):
        return "log"
    parts = ["log"]
    for k in ("prefix", "group", "snaplen", "queue-threshold", "level"):
        v = body.get(k)
        if v is None:
            continue
        parts += [k, _quote(str(v)) if k == "prefix" else str(v)]
    flags = body.get("flags")
    if flags is not None:
        parts += ["flags", ",".join(str(f) for f in flags) if isinstance(flags, tuple) else str(flags)]
    return " ".join(parts)


def _limit(body: JSON) -> str:
    if isinstance(body, str):
        return f"limit name {_quote(body)}"
    b = _b(body)
    over = "over " if b.get("inv") else ""
    unit = b.get("rate_unit")
    u = "" if unit in (None, "packets") else f" {unit}"
    s = f"limit rate {over}{b.get('rate')}{u}/{b.get('per', 'second')}"
    burst = b.get("burst")
    if isinstance(burst, int) and burst and burst != 5:
        s += f" burst {burst} {b.get('burst_unit', 'packets') if unit not in (None, 'packets') else 'packets'}"
    return s


def _quota(body: JSON) -> str:
    if isinstance(body, str):
        return f"quota name {_quote(body)}"
    b = _b(body)
    over = "over " if b.get("inv") else ""
    return f"quota {over}{b.get('val')} {b.get('val_unit', 'bytes')}"


def _setstmt(body: JSON) -> str:
    b = _b(body)
    return f"{b.get('op')} {b.get('set')} {{ {expr_text(b.get('elem'))} }}"


def _vmap(body: JSON) -> str:
    b = _b(body)
    return f"{expr_text(b.get('key'))} vmap {expr_text(b.get('data'))}"


def _queue(body: JSON) -> str:
    if not isinstance(body, JMap):
        return "queue"
    parts = ["queue"]
    flags = body.get("flags")
    if flags is not None:
        parts += ["flags", ",".join(str(f) for f in flags) if isinstance(flags, tuple) else str(flags)]
    if body.get("num") is not None:
        parts += ["to", expr_text(body.get("num"))]
    return " ".join(parts)


def _tproxy(body: JSON) -> str:
    b = _b(body)
    parts = ["tproxy"]
    if b.get("family") is not None:
        parts.append(str(b.get("family")))
    a = expr_text(b.get("addr")) if b.get("addr") is not None else ""
    if b.get("port") is not None:
        a += f":{expr_text(b.get('port'))}"
    return " ".join([*parts, "to", a])


def _fwd(body: JSON) -> str:
    b = _b(body)
    s = "fwd"
    if b.get("family") is not None:
        s += f" {b.get('family')} to {expr_text(b.get('addr'))} device {expr_text(b.get('dev'))}"
    else:
        s += f" to {expr_text(b.get('dev'))}"
    return s


def _dup(body: JSON) -> str:
    b = _b(body)
    s = f"dup to {expr_text(b.get('addr'))}"
    if b.get("dev") is not None:
        s += f" device {expr_text(b.get('dev'))}"
    return s


def _meter(body: JSON) -> str:
    b = _b(body)
    return (f"meter {b.get('name')} {{ {expr_text(b.get('key'))} "
            f"{stmt_text(b.get('stmt'))} }}")


def _xt(body: JSON) -> str:
    b = _b(body)
    return f"xt {b.get('type')} {_quote(str(b.get('name')))}"


def _objref(word: str):  # type: ignore[no-untyped-def]
    def fn(body: JSON) -> str:
        return f"{word} set {_quote(body) if isinstance(body, str) else expr_text(body)}"
    return fn


def _ctcount(body: JSON) -> str:
    b = _b(body)
    return f"ct count {'over ' if b.get('inv') else ''}{b.get('val')}"


def _synproxy(body: JSON) -> str:
    return "synproxy"


_STMT = {
    "match": _match, "counter": _counter, "mangle": _mangle,
    "snat": _nat("snat"), "dnat": _nat("dnat"), "masquerade": _nat("masquerade"),
    "redirect": _nat("redirect"), "reject": _reject, "log": _log, "limit": _limit,
    "quota": _quota, "set": _setstmt, "map": _setstmt, "vmap": _vmap, "queue": _queue,
    "tproxy": _tproxy, "fwd": _fwd, "dup": _dup, "meter": _meter, "xt": _xt,
    "ct helper": _objref("ct helper"), "ct timeout": _objref("ct timeout"),
    "ct expectation": _objref("ct expectation"), "ct count": _ctcount,
    "synproxy": _synproxy, "secmark": _objref("meta secmark"),
    "notrack": lambda body: "notrack",
}


def stmt_text(s: JSON) -> str:
    """One statement of a rule."""
    if not isinstance(s, JMap):
        return _raw(s)
    one = s.single()
    if one is None:
        return _raw(s)
    kind, body = one
    if kind in _VERDICTS:
        if kind == "queue":
            return _queue(body)
        return _verdict_text(kind, body)
    fn = _STMT.get(kind)
    if fn is None:
        return _raw(s)
    try:
        return str(fn(body))
    except (AttributeError, TypeError, ValueError, KeyError):
        return _raw(s)


def rule_text(rule: NftRule | tuple[JSON, ...]) -> str:
    """A whole rule, statements separated by spaces (comment last, as nft prints it)."""
    exprs = rule.exprs if isinstance(rule, NftRule) else rule
    text = " ".join(stmt_text(s) for s in exprs)
    if isinstance(rule, NftRule) and rule.comment:
        text += f" comment {_quote(rule.comment)}"
    return text


def priority_text(prio: int | None, family: str = "ip") -> str:
    if prio is None:
        return "?"
    if prio in _PRIO_NAMES and family not in ("netdev", "bridge"):
        return _PRIO_NAMES[prio]
    for base, name in _PRIO_NAMES.items():
        d = prio - base
        if family not in ("netdev", "bridge") and -10 <= d <= 10 and d:
            return f"{name} {'+' if d > 0 else '-'} {abs(d)}"
    return str(prio)


def chain_header(c: NftChain) -> str:
    """``type filter hook input priority filter; policy accept;`` for a base chain."""
    if not c.base:
        return ""
    dev = ""
    if c.devices:
        dev = (f' device {_quote(c.devices[0])}' if len(c.devices) == 1 else
               " devices = { " + ", ".join(c.devices) + " }")
    return (f"type {c.type} hook {c.hook}{dev} priority {priority_text(c.priority, c.family)}; "
            f"policy {c.policy or 'accept'};")


def set_text(s: NftSet) -> str:
    """A one-line summary of a named set or map."""
    t = " . ".join(s.type)
    if s.map_type is not None:
        t += " : " + " . ".join(s.map_type)
    flags = f" flags {','.join(s.flags)};" if s.flags else ""
    return f"{s.kind} {s.name} {{ type {t};{flags} {len(s.elements)} elements }}"

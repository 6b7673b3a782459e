"""The packet form: every field the kernel decides on, validated as you type.

The form builds a packet spec (the same one-line grammar as ``journey trace``) from its
fields, parses it with ``journey.packets.spec`` and shows the result; editing the spec line
refills the fields. Posts ``PacketForm.Run`` with a valid spec. Depends on textual and the
packet spec grammar (pure) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from journey.errors import PacketSpecError
from journey.model.packet import Packet

PROTOS = ("tcp", "udp", "icmp", "icmpv6")
LOCAL = "local process"

# field id -> (label, placeholder)
FIELDS: dict[str, tuple[str, str]] = {
    "src": ("src", "198.51.100.7"),
    "sport": ("sport", "40000"),
    "dst": ("dst", "192.0.2.10"),
    "dport": ("dport", "80"),
    "flags": ("flags", "S"),
    "uid": ("uid", "local: 1000"),
    "icmp_type": ("icmp type", "echo-request"),
    "icmp_code": ("code", "0"),
    "mark": ("mark", "0x0"),
    "tos": ("tos", "0x0"),
    "ttl": ("ttl", "64"),
    "length": ("len", "auto"),
}


def _endpoint(addr: str, port: str) -> str:
    addr, port = addr.strip(), port.strip()
    if not port:
        return addr
    if ":" in addr:
        return f"[{addr}]:{port}"
    return f"{addr}:{port}"


def build_spec(values: dict[str, str], proto: str, arrival: str, df: bool) -> str:
    """The packet spec for the form's values (not validated here)."""
    words: list[str] = []
    if arrival == LOCAL:
        words.append("local")
        if values.get("uid", "").strip():
            words += ["uid", values["uid"].strip()]
    elif arrival:
        words += ["in", arrival]
    words.append(proto)
    ports = proto in ("tcp", "udp")
    src = _endpoint(values.get("src", ""), values.get("sport", "") if ports else "")
    if src:
        words.append(src)
    words += [">", _endpoint(values.get("dst", ""), values.get("dport", "") if ports else "")]
    if proto == "tcp" and values.get("flags", "").strip():
        words += ["flags", values["flags"].strip()]
    if proto in ("icmp", "icmpv6"):
        if values.get("icmp_type", "").strip():
            words += ["type", values["icmp_type"].strip()]
        if values.get("icmp_code", "").strip():
            words += ["code", values["icmp_code"].strip()]
    for key, word in (("mark", "mark"), ("tos", "tos"), ("ttl", "ttl"), ("length", "len")):
        v = values.get(key, "").strip()
        if v:
            words += [word, v]
    if df:
        words.append("df")
    return " ".join(words)


def packet_values(p: Packet) -> dict[str, str]:
    """The form's field values for a packet."""
    def s(v: object) -> str:
        return "" if v is None else str(v)

    return {
        "src": s(p.src), "sport": s(p.sport), "dst": s(p.dst), "dport": s(p.dport),
        "flags": p.tcp_flags if p.proto == 6 else "", "uid": s(p.uid),
        "icmp_type": s(p.icmp_type), "icmp_code": s(p.icmp_code) if p.icmp_code else "",
        "mark": hex(p.mark) if p.mark else "", "tos": hex(p.tos) if p.tos else "",
        "ttl": "" if p.ttl == 64 else str(p.ttl), "length": s(p.length),
    }


def proto_word(p: Packet) -> str:
    return {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6"}.get(p.proto, "tcp")


@dataclass(frozen=True, slots=True)
class Checked:
    spec: str
    packet: Packet | None
    error: str | None
    column: int | None


def check_spec(spec: str) -> Checked:
    from journey.packets.spec import parse_spec

    try:
        return Checked(spec, parse_spec(spec), None, None)
    except PacketSpecError as e:
        return Checked(spec, None, e.message, e.column)


class PacketForm(Vertical):
    """Craft a packet field by field, or type its spec; ``Run`` is posted with a valid spec."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "run", "Run", id="run-packet", tooltip="Run the packet through the host"),
    ]

    class Run(Message):
        def __init__(self, spec: str, packet: Packet) -> None:
            super().__init__()
            self.spec = spec
            self.packet = packet

    def __init__(self, interfaces: tuple[str, ...] = (), *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.interfaces = interfaces
        self._expected: set[tuple[str, str]] = set()  # (widget id, value) we set ourselves
        self.checked: Checked | None = None

    def compose(self) -> ComposeResult:
        with Grid(id="form-grid"):
            yield Label("proto")
            yield Select([(p, p) for p in PROTOS], value="tcp", allow_blank=False, id="f-proto",
                         compact=True)
            yield Label("from")
            yield Select(self._arrival_options(), prompt="(guess)", id="f-arrival", compact=True)
            for key, (label, placeholder) in FIELDS.items():
                yield Label(label)
                yield Input(placeholder=placeholder, id=f"f-{key}", compact=True)
            yield Label("DF")
            yield Checkbox("don't fragment", id="f-df", compact=True)
        yield Label("spec (editable; enter runs):", id="spec-label")
        yield Input(placeholder="in eth0 tcp 198.51.100.7:40000 > 192.0.2.10:80", id="spec",
                    compact=True)
        yield Static("", id="spec-status")
        with Horizontal(id="form-buttons"):
            yield Button("Run  ctrl+r", id="run", variant="primary", compact=True)

    def _arrival_options(self) -> list[tuple[str, str]]:
        return [(f"in {n}", n) for n in self.interfaces] + [(LOCAL, LOCAL)]

    def set_interfaces(self, names: tuple[str, ...]) -> None:
        self.interfaces = names
        sel = self.query_one("#f-arrival", Select)
        value = sel.value
        sel.set_options(self._arrival_options())
        if isinstance(value, str) and (value in names or value == LOCAL):
            sel.value = value

    # -- form -> spec -------------------------------------------------------------------------
    def values(self) -> dict[str, str]:
        return {k: self.query_one(f"#f-{k}", Input).value for k in FIELDS}

    def form_spec(self) -> str:
        proto = self.query_one("#f-proto", Select).value
        arrival = self.query_one("#f-arrival", Select).value
        return build_spec(self.values(), str(proto), arrival if isinstance(arrival, str) else "",
                          self.query_one("#f-df", Checkbox).value)

    def _ours(self, widget_id: str | None, value: object) -> bool:
        """Whether a Changed event echoes a value this form set itself (then it is ignored)."""
        key = (widget_id or "", str(value))
        if key in self._expected:
            self._expected.discard(key)
            return True
        return False

    def _set(self, widget: Input | Select[str] | Checkbox, value: object) -> None:
        if widget.value != value:
            self._expected.add((widget.id or "", str(value)))
            widget.value = value  # type: ignore[assignment]

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._ours(event.input.id, event.value):
            return
        if event.input.id == "spec":
            self._check(event.value, from_spec=True)
        else:
            self._from_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        if not self._ours(event.select.id, event.value):
            self._from_form()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        event.stop()
        if not self._ours(event.checkbox.id, event.value):
            self._from_form()

    def _from_form(self) -> None:
        spec = self.form_spec()
        self._set(self.query_one("#spec", Input), spec)
        self._check(spec, from_spec=False)

    def _check(self, spec: str, *, from_spec: bool) -> None:
        c = check_spec(spec)
        self.checked = c
        status = self.query_one("#spec-status", Static)
        if c.packet is not None:
            status.update(Text("✓ valid packet", style="green"))
            if from_spec:
                self.fill(c.packet)
        elif not self.values()["dst"].strip() and spec.rstrip().endswith(">"):
            status.update(Text("fill in at least dst (and dport for tcp/udp), or type a spec",
                               style="italic"))
        else:
            t = Text("✗ ", style="bold red")
            t.append(c.error or "invalid")
            if c.column:
                t.append(f"\n  {spec}\n  {' ' * (c.column - 1)}^", style="red")
            status.update(t)

    def fill(self, p: Packet, spec: str | None = None) -> None:
        """Fill every field (and the spec line when given) from a packet."""
        for k, v in packet_values(p).items():
            self._set(self.query_one(f"#f-{k}", Input), v)
        self._set(self.query_one("#f-proto", Select), proto_word(p))
        arrival = LOCAL if p.local else p.iif
        sel: Select[str] = self.query_one("#f-arrival", Select)
        if arrival and arrival != LOCAL and arrival not in self.interfaces:
            self.interfaces = (*self.interfaces, arrival)
            sel.set_options(self._arrival_options())
        if arrival:
            self._set(sel, arrival)
        elif not sel.is_blank():
            self._expected.add((sel.id or "", str(Select.BLANK)))
            sel.clear()
        self._set(self.query_one("#f-df", Checkbox), p.df)
        if spec is not None:
            self._set(self.query_one("#spec", Input), spec)
            self._check(spec, from_spec=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_run()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "run":
            event.stop()
            self.action_run()

    def action_run(self) -> None:
        spec = self.query_one("#spec", Input).value
        c = check_spec(spec)
        self.checked = c
        if c.packet is None:
            self._check(spec, from_spec=False)
            self.app.notify(f"bad packet spec: {c.error}", severity="error")
            return
        self.post_message(self.Run(spec, c.packet))

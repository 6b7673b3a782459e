#!/bin/sh
# Regenerate the import fixtures from the REAL tools, run inside throwaway network namespaces.
#
#   sudo sh tests/data/importdir/make_fixtures.sh
#
# Writes tests/data/importdir/host1/ (journey's flat folder layout: ip -j, iptables-save, ss,
# conntrack, sysctl, ipset, nft -j, tc -j) and tests/data/sosreport/sos-host1/ (the sos report
# layout: text outputs under sos_commands/). Only namespaces named jtpb-fx-* are created, and they
# are deleted on exit; nothing in the root namespace is touched.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
OUT="$HERE/host1"
SOS="$HERE/../sosreport/sos-host1"
H="jtpb-fx-host-$$"
P="jtpb-fx-peer-$$"
PIDS=""

cleanup() {
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    for ns in "$H" "$P"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

inh() { ip netns exec "$H" "$@"; }
inp() { ip netns exec "$P" "$@"; }

ip netns add "$H"
ip netns add "$P"
for ns in "$H" "$P"; do
    ip netns exec "$ns" sh -ec '
        ip link set lo up
        for k in net.ipv4.conf.all.rp_filter net.ipv4.conf.default.rp_filter \
                 net.ipv4.conf.all.accept_local net.ipv4.conf.default.accept_local \
                 net.ipv4.conf.all.route_localnet net.ipv4.conf.default.route_localnet \
                 net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding \
                 net.ipv6.conf.all.accept_ra net.ipv6.conf.default.accept_ra; do
            sysctl -qw "$k=0"
        done
        sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
        sysctl -qw net.ipv6.conf.all.router_solicitations=0 net.ipv6.conf.default.router_solicitations=0'
done

# --- links: two veth pairs to the peer, a bridge with a third veth ---------------------------
inh ip link add h0 type veth peer name p0
inh ip link set p0 netns "$P"
inh ip link add h1 type veth peer name p1
inh ip link set p1 netns "$P"
inh ip link add br0 type bridge
inh ip link add h2 type veth peer name h2b
inh ip link set h2b master br0
for i in h0 h1 h2 h2b br0; do inh ip link set "$i" up; done
for i in p0 p1; do inp ip link set "$i" up; done
inh ip link set h0 address 02:00:00:00:a0:01
inp ip link set p0 address 02:00:00:00:b0:02
inh ip link set h1 address 02:00:00:00:a1:01
inp ip link set p1 address 02:00:00:00:b1:02

inh ip addr add 10.77.0.1/24 dev h0
inh ip addr add 10.77.0.9/24 dev h0      # secondary
inh ip addr add fd77::1/64 dev h0 nodad
inh ip addr add 10.78.0.1/24 dev h1
inh ip addr add 192.168.50.1/24 dev br0
inp ip addr add 10.77.0.2/24 dev p0
inp ip addr add fd77::2/64 dev p0 nodad
inp ip addr add 10.78.0.2/24 dev p1
inp ip route add default via 10.77.0.2 2>/dev/null || inp ip route add default dev p0

# --- routes: main, table 100/200/1000, special types, multipath, IPv6 -------------------------
inh ip route add default via 10.77.0.2 dev h0
inh ip route add blackhole 10.66.0.0/16
inh ip route add unreachable 10.67.0.0/16
inh ip route add 10.70.0.0/16 nexthop via 10.77.0.2 dev h0 weight 1 nexthop via 10.78.0.2 dev h1 weight 2
inh ip route add 10.50.0.0/16 via 10.77.0.2 dev h0 table 100 proto static metric 50
inh ip route add default via 10.78.0.2 dev h1 table 100
inh ip route add prohibit 10.68.0.0/16 table 200
inh ip route add 10.90.1.5 via 10.78.0.2 dev h1 table 1000
inh ip -6 route add default via fd77::2 dev h0 metric 1024
inh ip -6 route add 2001:db8:100::/48 via fd77::2 dev h0 table 100
inh ip -6 route add unreachable 2001:db8:bad::/48

# --- policy rules (v4 and v6) ------------------------------------------------------------------
inh ip rule add priority 900 iif h1 to 10.50.0.0/16 lookup main
inh ip rule add priority 1000 from 10.78.0.0/24 lookup 100
inh ip rule add priority 1100 fwmark 0x10/0xff lookup 200
inh ip rule add priority 1200 not to 10.0.0.0/8 lookup 100
inh ip rule add priority 1250 ipproto tcp dport 22 lookup 100
inh ip rule add priority 1300 to 10.90.0.0/16 lookup 1000
inh ip -6 rule add priority 1000 from fd77::/64 lookup 100

# --- neighbours: permanent + learnt ------------------------------------------------------------
inh ip neigh add 10.77.0.3 lladdr 02:00:00:00:00:03 dev h0 nud permanent
inh ip neigh add 10.77.0.4 lladdr 02:00:00:00:00:04 dev h0 nud stale
inh ip -6 neigh add fd77::3 lladdr 02:00:00:00:00:03 dev h0 nud permanent

# --- sysctls ----------------------------------------------------------------------------------
inh sysctl -qw net.ipv4.ip_forward=1
inh sysctl -qw net.ipv4.conf.h0.rp_filter=1 net.ipv4.conf.h1.rp_filter=2
inh sysctl -qw net.ipv4.conf.h1.route_localnet=1 net.ipv6.conf.all.forwarding=1

# --- firewall: ipset, iptables-nft, ip6tables, iptables-legacy, native nft -----------------------
inh ipset create trusted hash:net
inh ipset add trusted 10.78.0.0/24
inh ipset add trusted 192.168.50.0/24
inh ipset create webports bitmap:port range 1-1024
inh ipset add webports 80
inh ipset add webports 443
inh iptables-restore <<'EOF'
*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -p udp -m udp --dport 5353 -j CT --notrack
COMMIT
*mangle
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 443 -j MARK --set-xmark 0x10/0xffffffff
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
-A PREROUTING -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.77.0.1:8080
-A POSTROUTING -s 10.78.0.0/24 -o h0 -j MASQUERADE
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:MYCHAIN - [0:0]
-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A INPUT -s 10.77.0.0/24 -p tcp -m tcp --dport 8080 -j ACCEPT
-A INPUT -p tcp -m multiport --dports 2222,8080 -m comment --comment "app ports" -j ACCEPT
-A INPUT -m set --match-set trusted src -j ACCEPT
-A INPUT -p udp -m udp --dport 5353 -j LOG --log-prefix "mdns "
-A INPUT -j MYCHAIN
-A FORWARD -i h1 -o h0 -j ACCEPT
-A MYCHAIN -p icmp -m icmp --icmp-type 8 -m limit --limit 5/sec -j ACCEPT
COMMIT
EOF
inh ip6tables-restore <<'EOF'
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
-A INPUT -p ipv6-icmp -j ACCEPT
-A INPUT -p tcp -m tcp --dport 8080 -m conntrack --ctstate NEW -j ACCEPT
COMMIT
EOF
inh iptables-legacy -t filter -A INPUT -p tcp --dport 2222 -j ACCEPT
inh nft -f - <<'EOF'
table inet filter2 {
    set allowed { type ipv4_addr; flags interval; elements = { 10.78.0.0/24, 10.77.0.0/24 } }
    chain input { type filter hook input priority 10; policy accept;
        ip saddr @allowed tcp dport { 2222, 8080 } counter accept comment "allow app"
        ct state established,related accept
    }
    chain forward_c { type filter hook forward priority 10; policy accept; }
}
EOF
inh tc qdisc add dev h1 root handle 1: prio 2>/dev/null || true

# --- sockets: listeners and one established TCP connection (tracked by conntrack) --------------
ip netns exec "$H" python3 - <<'EOF' &
import socket, time
s1 = socket.socket(); s1.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s1.bind(("10.77.0.1", 2222)); s1.listen()
s2 = socket.socket(socket.AF_INET6); s2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s2.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s2.bind(("::", 8080)); s2.listen()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 5353))
u6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u6.bind(("::1", 5354))
conns = []
while True:
    c, _ = s2.accept(); conns.append(c)
EOF
PIDS="$PIDS $!"
sleep 1
ip netns exec "$P" python3 - <<'EOF' &
import socket, time
c = socket.create_connection(("10.77.0.1", 8080), source_address=("10.77.0.2", 40123))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.77.0.2", 33757))
u.sendto(b"x", ("10.77.0.1", 9000))
time.sleep(60)
EOF
PIDS="$PIDS $!"
sleep 1
inp python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"x", ("10.78.0.1", 9999))'
# one ICMP echo (raw socket: ping is not always installed)
inp python3 -c '
import socket, struct
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
hdr = struct.pack("!BBHHH", 8, 0, 0, 0x1234, 1) + b"ping"
pkt = hdr[:2] + struct.pack("!H", csum(hdr)) + hdr[4:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); s.settimeout(1)
s.sendto(pkt, ("10.77.0.1", 0))
s.recv(100)'
sleep 0.5

# --- journey's flat folder layout ---------------------------------------------------------------
rm -rf "$OUT"; mkdir -p "$OUT"
inh ip -j -d addr > "$OUT/ip_addr.json"
inh ip -j route show table all > "$OUT/ip_route.json"
inh ip -j -6 route show table all > "$OUT/ip6_route.json"
inh ip -j rule > "$OUT/ip_rule.json"
inh ip -j -6 rule > "$OUT/ip6_rule.json"
inh ip -j neigh > "$OUT/ip_neigh.json"
inh iptables-save 2>/dev/null > "$OUT/iptables-save.txt"
inh ip6tables-save 2>/dev/null > "$OUT/ip6tables-save.txt"
inh iptables-legacy-save > "$OUT/iptables-legacy-save.txt"
inh nft -j list ruleset > "$OUT/nft.json"
inh ss -tuanpe 2>/dev/null > "$OUT/ss.txt"
inh conntrack -L -o extended 2>/dev/null > "$OUT/conntrack.txt"
inh sysctl -a 2>/dev/null | grep '^net\.' > "$OUT/sysctl.txt"
inh ipset save > "$OUT/ipset.txt"
inh tc -j qdisc show > "$OUT/tc_qdisc.json"
uname -r > "$OUT/uname.txt"

# --- sos report layout (text outputs, sos's mangled command names) ------------------------------
rm -rf "$SOS"
N="$SOS/sos_commands/networking"; F="$SOS/sos_commands/firewall_tables"
K="$SOS/sos_commands/kernel"; C="$SOS/sos_commands/conntrack"
mkdir -p "$N" "$F" "$K" "$C" "$SOS/proc/sys/net/ipv4"
inh ip -d address > "$N/ip_-d_address"
inh ip -o addr > "$N/ip_-o_addr"
inh ip -s -d link > "$N/ip_-s_-d_link"
inh ip route show table all > "$N/ip_route_show_table_all"
inh ip -6 route show table all > "$N/ip_-6_route_show_table_all"
inh ip -4 rule list > "$N/ip_-4_rule_list"
inh ip -6 rule list > "$N/ip_-6_rule_list"
inh ip -s -s neigh show > "$N/ip_-s_-s_neigh_show"
inh ip neigh show nud noarp > "$N/ip_neigh_show_nud_noarp"
inh ss -peaonmi 2>/dev/null > "$N/ss_-peaonmi"
inh tc -s qdisc show > "$N/tc_-s_qdisc_show"
inh nft list ruleset > "$F/nft_list_ruleset"
inh iptables -vnxL 2>/dev/null > "$F/iptables_-vnxL"
inh ip6tables -vnxL 2>/dev/null > "$F/ip6tables_-vnxL"
# sos keeps no iptables-save of the host (only the -vnxL listings above): journey reports the
# iptables parts as missing; a user can add an iptables-save file next to sos_commands/.
inh conntrack -L -o extended 2>/dev/null > "$C/conntrack_-L_-o_extended"
inh sysctl -a 2>/dev/null > "$K/sysctl_-a"
echo 1 > "$SOS/proc/sys/net/ipv4/ip_forward"
echo "host1" > "$SOS/hostname"
echo "Linux host1 6.18.0 #1 SMP x86_64 GNU/Linux" > "$SOS/uname"
echo "fixtures written to $OUT and $SOS"

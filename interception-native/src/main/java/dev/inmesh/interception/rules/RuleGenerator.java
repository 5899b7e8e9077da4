package dev.inmesh.interception.rules;

import static dev.inmesh.interception.rules.Table.MANGLE;
import static dev.inmesh.interception.rules.Table.NAT;
import static dev.inmesh.interception.rules.Table.RAW;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns a {@link CaptureConfig} into the {@link RuleSet} istio-iptables would install for the same flags, rule for
 * rule and in the same order (order matters: iptables takes the first match). A pure function.
 */
public final class RuleGenerator {
    /** Chains we create. */
    public static final String INBOUND = "ISTIO_INBOUND";
    public static final String REDIRECT = "ISTIO_REDIRECT";
    public static final String IN_REDIRECT = "ISTIO_IN_REDIRECT";
    public static final String OUTPUT = "ISTIO_OUTPUT";
    public static final String OUTPUT_DNS = "ISTIO_OUTPUT_DNS";
    public static final String DIVERT = "ISTIO_DIVERT";
    public static final String TPROXY = "ISTIO_TPROXY";
    public static final String DROP = "ISTIO_DROP";

    private static final String PREROUTING = "PREROUTING";
    private static final String OUTPUT_BUILTIN = "OUTPUT";
    private static final String V6_LOOPBACK = "::1/128";
    /** Stands for the family's own address in a rule written once for both families. */
    private static final String PER_FAMILY = "\u0000per-family";

    private RuleGenerator() {}

    /** The rules for a configuration. */
    public static RuleSet generate(CaptureConfig cfg) {
        return new Generation(cfg).run();
    }

    /** One generation: the config and the two lists being filled. */
    private static final class Generation {
        private final CaptureConfig cfg;
        private final List<Rule> v4 = new ArrayList<>();
        private final List<Rule> v6 = new ArrayList<>();
        private final String loopbackV4;
        private final boolean dns;

        Generation(CaptureConfig cfg) {
            this.cfg = cfg;
            this.loopbackV4 = cfg.hostIpv4LoopbackCidr().toString();
            this.dns = cfg.dnsRedirectionActive();
        }

        RuleSet run() {
            skipExcludedInterfaces();
            skipKubeVirtInterfacesInbound();
            if (cfg.dropInvalid()) {
                both(MANGLE, PREROUTING, "-m", "conntrack", "--ctstate", "INVALID", "-j", DROP);
                both(MANGLE, DROP, "-j", "DROP");
            }
            // The tunnel port carries already-secured mesh traffic: never capture it.
            both(NAT, INBOUND, "-p", "tcp", "--dport", port(cfg.inboundTunnelPort()), "-j", "RETURN");
            both(NAT, REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", port(cfg.proxyPort()));
            both(NAT, IN_REDIRECT, "-p", "tcp", "-j", "REDIRECT", "--to-ports", port(cfg.inboundCapturePort()));
            captureInbound();
            both(NAT, OUTPUT_BUILTIN, "-j", OUTPUT);
            for (int p : cfg.outboundPortsExclude()) {
                both(NAT, OUTPUT, "-p", "tcp", "--dport", port(p), "-j", "RETURN");
                both(NAT, OUTPUT, "-p", "udp", "--dport", port(p), "-j", "RETURN");
            }
            perFamily(CaptureConfig.PASSTHROUGH_SOURCE_V4, CaptureConfig.PASSTHROUGH_SOURCE_V6,
                    NAT, OUTPUT, "-o", "lo", "-s", PER_FAMILY, "-j", "RETURN");
            for (String uid : cfg.proxyUids()) {
                proxyOwnTraffic("--uid-owner", uid, dns);
            }
            for (String gid : cfg.proxyGids()) {
                // Istio keeps DNS (port 53) in the loopback redirect exception for UIDs only.
                proxyOwnTraffic("--gid-owner", gid, false);
            }
            captureByOwnerGroup();
            if (dns) {
                redirectDns();
            }
            perFamily(loopbackV4, V6_LOOPBACK, NAT, OUTPUT, "-d", PER_FAMILY, "-j", "RETURN");
            for (Cidr c : cfg.outboundIpRangesExclude()) {
                family(c.family(), NAT, OUTPUT, "-d", c.toString(), "-j", "RETURN");
            }
            for (int p : cfg.outboundPortsInclude()) {
                both(NAT, OUTPUT, "-p", "tcp", "--dport", port(p), "-j", REDIRECT);
            }
            captureOutboundRanges(IpFamily.V4);
            captureOutboundRanges(IpFamily.V6);
            if (cfg.interceptionMode() == InterceptionMode.TPROXY) {
                tproxyMarks();
            }
            return new RuleSet(v4, cfg.enableIpv6() ? v6 : List.of());
        }

        private void skipExcludedInterfaces() {
            for (String nic : cfg.excludeInterfaces()) {
                both(NAT, PREROUTING, "-i", nic, "-j", "RETURN");
                both(NAT, OUTPUT_BUILTIN, "-o", nic, "-j", "RETURN");
            }
            if (cfg.interceptionMode() == InterceptionMode.TPROXY) {
                for (String nic : cfg.excludeInterfaces()) {
                    both(MANGLE, PREROUTING, "-i", nic, "-j", "RETURN");
                    both(MANGLE, OUTPUT_BUILTIN, "-o", nic, "-j", "RETURN");
                }
            }
        }

        private void skipKubeVirtInterfacesInbound() {
            for (String nic : cfg.kubeVirtInterfaces()) {
                bothInsert(NAT, PREROUTING, 1, "-i", nic, "-j", "RETURN");
            }
        }

        private void captureInbound() {
            CaptureConfig.PortSelection ports = cfg.inboundPorts();
            if (!ports.all() && ports.ports().isEmpty()) {
                return;
            }
            boolean tproxy = cfg.interceptionMode() == InterceptionMode.TPROXY;
            Table table = tproxy ? MANGLE : NAT;
            if (tproxy) {
                // Marked packets are routed to the loopback device (policy routing), where TPROXY hands them to the
                // listener without rewriting their destination.
                both(MANGLE, DIVERT, "-j", "MARK", "--set-mark", Long.toString(cfg.inboundTproxyMark()));
                both(MANGLE, DIVERT, "-j", "ACCEPT");
                perFamily(loopbackV4, V6_LOOPBACK, MANGLE, TPROXY, "!", "-d", PER_FAMILY, "-p", "tcp",
                        "-j", "TPROXY", "--tproxy-mark", cfg.inboundTproxyMark() + "/0xffffffff",
                        "--on-port", port(cfg.inboundCapturePort()));
            }
            both(table, PREROUTING, "-p", "tcp", "-j", INBOUND);
            if (ports.all()) {
                for (int p : cfg.inboundPortsExclude()) {
                    both(table, INBOUND, "-p", "tcp", "--dport", port(p), "-j", "RETURN");
                }
                if (tproxy) {
                    both(MANGLE, INBOUND, "-p", "tcp", "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED",
                            "-j", DIVERT);
                    both(MANGLE, INBOUND, "-p", "tcp", "-j", TPROXY);
                } else {
                    both(NAT, INBOUND, "-p", "tcp", "-j", IN_REDIRECT);
                }
                return;
            }
            for (int p : ports.ports()) {
                if (tproxy) {
                    both(MANGLE, INBOUND, "-p", "tcp", "--dport", port(p), "-m", "conntrack", "--ctstate",
                            "RELATED,ESTABLISHED", "-j", DIVERT);
                    both(MANGLE, INBOUND, "-p", "tcp", "--dport", port(p), "-j", TPROXY);
                } else {
                    both(NAT, INBOUND, "-p", "tcp", "--dport", port(p), "-j", IN_REDIRECT);
                }
            }
        }

        /**
         * The proxy's own connections: to a non-local address over lo (an app calling itself through a service VIP)
         * they go to the inbound side; other lo traffic from anyone else is app-to-app and is left alone; and nothing
         * else the proxy sends is captured again (no loops).
         */
        private void proxyOwnTraffic(String ownerMatch, String id, boolean skipDnsPort) {
            if (skipDnsPort) {
                perFamily(loopbackV4, V6_LOOPBACK, NAT, OUTPUT, "-o", "lo", "!", "-d", PER_FAMILY, "-p", "tcp",
                        "-m", "multiport", "!", "--dports", "53," + cfg.inboundTunnelPort(),
                        "-m", "owner", ownerMatch, id, "-j", IN_REDIRECT);
            } else {
                perFamily(loopbackV4, V6_LOOPBACK, NAT, OUTPUT, "-o", "lo", "!", "-d", PER_FAMILY, "-p", "tcp",
                        "!", "--dport", port(cfg.inboundTunnelPort()),
                        "-m", "owner", ownerMatch, id, "-j", IN_REDIRECT);
            }
            if (!cfg.outboundIpRangesInclude().hasLoopback()) {
                if (dns) {
                    // TCP DNS to a resolver on localhost must still reach the DNS rules below.
                    both(NAT, OUTPUT, "-o", "lo", "-p", "tcp", "!", "--dport", "53",
                            "-m", "owner", "!", ownerMatch, id, "-j", "RETURN");
                } else {
                    both(NAT, OUTPUT, "-o", "lo", "-m", "owner", "!", ownerMatch, id, "-j", "RETURN");
                }
            }
            both(NAT, OUTPUT, "-m", "owner", ownerMatch, id, "-j", "RETURN");
        }

        private void captureByOwnerGroup() {
            CaptureConfig.OwnerGroupFilter filter = cfg.ownerGroups();
            if (filter.except()) {
                for (String g : filter.groups()) {
                    both(NAT, OUTPUT, "-m", "owner", "--gid-owner", g, "-j", "RETURN");
                }
                return;
            }
            List<String> spec = new ArrayList<>();
            for (String g : filter.groups()) {
                spec.addAll(List.of("-m", "owner", "!", "--gid-owner", g));
            }
            spec.addAll(List.of("-j", "RETURN"));
            both(NAT, OUTPUT, spec.toArray(String[]::new));
        }

        private void redirectDns() {
            String agent = port(CaptureConfig.AGENT_DNS_PORT);
            boolean all = cfg.captureAllDns();
            both(RAW, OUTPUT_BUILTIN, "-j", OUTPUT_DNS);
            for (IpFamily f : IpFamily.values()) {
                // no jump into a chain that would stay empty for this family
                if (all || !dnsServers(f).isEmpty()) {
                    family(f, NAT, OUTPUT, "-j", OUTPUT_DNS);
                }
            }
            for (String proto : List.of("tcp", "udp")) {
                // Istio spells the REDIRECT option differently for the two protocols; iptables accepts both.
                String toPorts = proto.equals("tcp") ? "--to-ports" : "--to-port";
                if (all) {
                    both(NAT, OUTPUT_DNS, "-p", proto, "--dport", "53", "-j", "REDIRECT", toPorts, agent);
                    continue;
                }
                for (IpFamily f : IpFamily.values()) {
                    for (String server : dnsServers(f)) {
                        family(f, NAT, OUTPUT_DNS, "-p", proto, "--dport", "53", "-d", host(f, server),
                                "-j", "REDIRECT", toPorts, agent);
                    }
                }
            }
            dnsConntrackZones(all);
        }

        /**
         * UDP DNS in two conntrack zones: the proxy's queries to real resolvers (and their answers) in zone 1, the
         * apps' queries to the agent (and its answers) in zone 2, so the two flows of one query never collide.
         */
        private void dnsConntrackZones(boolean all) {
            for (String uid : cfg.proxyUids()) {
                zonesForProxy("--uid-owner", uid);
            }
            for (String gid : cfg.proxyGids()) {
                zonesForProxy("--gid-owner", gid);
            }
            if (all) {
                both(RAW, PREROUTING, "-j", INBOUND);
                both(RAW, OUTPUT_DNS, "-p", "udp", "--dport", "53", "-j", "CT", "--zone", "2");
                both(RAW, INBOUND, "-p", "udp", "--sport", "53", "-j", "CT", "--zone", "1");
                return;
            }
            for (IpFamily f : IpFamily.values()) {
                List<String> servers = dnsServers(f);
                if (!servers.isEmpty()) {
                    family(f, RAW, PREROUTING, "-j", INBOUND);
                }
                for (String server : servers) {
                    family(f, RAW, OUTPUT_DNS, "-p", "udp", "--dport", "53", "-d", host(f, server),
                            "-j", "CT", "--zone", "2");
                    family(f, RAW, INBOUND, "-p", "udp", "--sport", "53", "-s", host(f, server),
                            "-j", "CT", "--zone", "1");
                }
            }
        }

        private List<String> dnsServers(IpFamily f) {
            return f == IpFamily.V4 ? cfg.dnsServersV4() : cfg.dnsServersV6();
        }

        /** A single address as a range: {@code /32} or {@code /128}. */
        private static String host(IpFamily f, String address) {
            return address + (f == IpFamily.V4 ? "/32" : "/128");
        }

        private void zonesForProxy(String ownerMatch, String id) {
            both(RAW, OUTPUT_DNS, "-p", "udp", "--dport", "53", "-m", "owner", ownerMatch, id,
                    "-j", "CT", "--zone", "1");
            both(RAW, OUTPUT_DNS, "-p", "udp", "--sport", port(CaptureConfig.AGENT_DNS_PORT), "-m", "owner",
                    ownerMatch, id, "-j", "CT", "--zone", "2");
        }

        private void captureOutboundRanges(IpFamily f) {
            CaptureConfig.CidrSelection include = cfg.outboundIpRangesInclude();
            if (include.all()) {
                family(f, NAT, OUTPUT, "-j", REDIRECT);
                for (String nic : cfg.kubeVirtInterfaces()) {
                    familyInsert(f, NAT, PREROUTING, 1, "-i", nic, "-j", REDIRECT);
                }
                return;
            }
            for (Cidr c : include.of(f)) {
                for (String nic : cfg.kubeVirtInterfaces()) {
                    familyInsert(f, NAT, PREROUTING, 1, "-i", nic, "-d", c.toString(), "-j", REDIRECT);
                }
                family(f, NAT, OUTPUT, "-d", c.toString(), "-j", REDIRECT);
            }
        }

        private void tproxyMarks() {
            String mark = Long.toString(cfg.inboundTproxyMark());
            String outboundMark = Integer.toString(CaptureConfig.OUTBOUND_MARK);
            // Remember the mark on the connection, and give it back to the reply packets, so replies route locally.
            both(MANGLE, PREROUTING, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "CONNMARK", "--save-mark");
            both(MANGLE, OUTPUT_BUILTIN, "-p", "tcp", "-o", "lo", "-m", "mark", "--mark", mark, "-j", "RETURN");
            for (String uid : cfg.proxyUids()) {
                perFamily(loopbackV4, V6_LOOPBACK, MANGLE, OUTPUT_BUILTIN, "!", "-d", PER_FAMILY, "-p", "tcp",
                        "-o", "lo", "-m", "owner", "--uid-owner", uid, "-j", "MARK", "--set-mark", outboundMark);
            }
            for (String gid : cfg.proxyGids()) {
                perFamily(loopbackV4, V6_LOOPBACK, MANGLE, OUTPUT_BUILTIN, "!", "-d", PER_FAMILY, "-p", "tcp",
                        "-o", "lo", "-m", "owner", "--gid-owner", gid, "-j", "MARK", "--set-mark", outboundMark);
            }
            both(MANGLE, OUTPUT_BUILTIN, "-p", "tcp", "-m", "connmark", "--mark", mark, "-j", "CONNMARK",
                    "--restore-mark");
            bothInsert(MANGLE, INBOUND, 1, "-p", "tcp", "-m", "mark", "--mark", mark, "-j", "RETURN");
            familyInsert(IpFamily.V4, MANGLE, INBOUND, 2, "-p", "tcp", "-s", CaptureConfig.PASSTHROUGH_SOURCE_V4,
                    "-i", "lo", "-j", "RETURN");
            familyInsert(IpFamily.V6, MANGLE, INBOUND, 2, "-p", "tcp", "-s", CaptureConfig.PASSTHROUGH_SOURCE_V6,
                    "-i", "lo", "-j", "RETURN");
            bothInsert(MANGLE, INBOUND, 3, "-p", "tcp", "-i", "lo", "-m", "mark", "!", "--mark", outboundMark,
                    "-j", "RETURN");
        }

        private static String port(int p) {
            return Integer.toString(p);
        }

        private void both(Table t, String chain, String... spec) {
            family(IpFamily.V4, t, chain, spec);
            family(IpFamily.V6, t, chain, spec);
        }

        private void bothInsert(Table t, String chain, int position, String... spec) {
            familyInsert(IpFamily.V4, t, chain, position, spec);
            familyInsert(IpFamily.V6, t, chain, position, spec);
        }

        private void family(IpFamily f, Table t, String chain, String... spec) {
            (f == IpFamily.V4 ? v4 : v6).add(Rule.append(t, chain, List.of(spec)));
        }

        private void familyInsert(IpFamily f, Table t, String chain, int position, String... spec) {
            (f == IpFamily.V4 ? v4 : v6).add(Rule.insert(t, chain, position, List.of(spec)));
        }

        /** One rule for both families, with {@link #PER_FAMILY} replaced by each family's own value. */
        private void perFamily(String v4Value, String v6Value, Table t, String chain, String... spec) {
            family(IpFamily.V4, t, chain, substitute(spec, v4Value));
            family(IpFamily.V6, t, chain, substitute(spec, v6Value));
        }

        private static String[] substitute(String[] spec, String value) {
            String[] out = spec.clone();
            for (int i = 0; i < out.length; i++) {
                if (out[i].equals(PER_FAMILY)) {
                    out[i] = value;
                }
            }
            return out;
        }
    }
}

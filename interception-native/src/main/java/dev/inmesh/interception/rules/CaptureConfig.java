package dev.inmesh.interception.rules;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * Everything the generator needs, resolved (flags, environment and host facts already merged) and validated: the
 * constructor rejects a bad value with a message naming the flag and what was expected, for example
 * {@code inbound-capture-port: 70000 (expected: 1..65535)}. {@link Builder} parses the textual flag values that
 * istio-iptables accepts.
 *
 * @param proxyPort                where outbound TCP is redirected ({@code -p}, 15001)
 * @param inboundCapturePort       where inbound TCP is redirected ({@code -z}, 15006)
 * @param inboundTunnelPort        the HBONE tunnel port, never captured ({@code -e}, 15008)
 * @param proxyUids                users whose traffic is the proxy's own ({@code -u}, 1337)
 * @param proxyGids                groups whose traffic is the proxy's own ({@code -g}, the UIDs by default)
 * @param interceptionMode         REDIRECT or TPROXY for inbound ({@code -m})
 * @param inboundTproxyMark        the packet mark of TPROXY mode ({@code -t}, 1337)
 * @param inboundTproxyRouteTable  the routing table of TPROXY mode ({@code -r}, 133)
 * @param inboundPorts             inbound ports captured, or all ({@code -b})
 * @param inboundPortsExclude      inbound ports left alone when all are captured ({@code -d})
 * @param outboundPortsInclude     outbound ports always captured ({@code -q})
 * @param outboundPortsExclude     outbound ports never captured ({@code -o})
 * @param outboundIpRangesInclude  outbound destinations captured, or all ({@code -i})
 * @param outboundIpRangesExclude  outbound destinations never captured ({@code -x})
 * @param kubeVirtInterfaces       interfaces whose inbound traffic is treated as outbound ({@code -k})
 * @param excludeInterfaces        interfaces never captured ({@code -c})
 * @param ownerGroups              which groups' outbound traffic is captured (ISTIO_OUTBOUND_OWNER_GROUPS[_EXCLUDE])
 * @param redirectDns              send DNS to the agent on 15053 ({@code --redirect-dns})
 * @param captureAllDns            all port-53 traffic rather than the listed servers ({@code --capture-all-dns})
 * @param dnsServersV4             the IPv4 name servers whose traffic is redirected
 * @param dnsServersV6             the IPv6 name servers whose traffic is redirected
 * @param dropInvalid              drop packets conntrack calls INVALID ({@code --drop-invalid})
 * @param enableIpv6               also generate ip6tables rules
 * @param hostIpv4LoopbackCidr     what counts as "localhost" (ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR, 127.0.0.1/32)
 */
public record CaptureConfig(
        int proxyPort,
        int inboundCapturePort,
        int inboundTunnelPort,
        List<String> proxyUids,
        List<String> proxyGids,
        InterceptionMode interceptionMode,
        long inboundTproxyMark,
        long inboundTproxyRouteTable,
        PortSelection inboundPorts,
        List<Integer> inboundPortsExclude,
        List<Integer> outboundPortsInclude,
        List<Integer> outboundPortsExclude,
        CidrSelection outboundIpRangesInclude,
        List<Cidr> outboundIpRangesExclude,
        List<String> kubeVirtInterfaces,
        List<String> excludeInterfaces,
        OwnerGroupFilter ownerGroups,
        boolean redirectDns,
        boolean captureAllDns,
        List<String> dnsServersV4,
        List<String> dnsServersV6,
        boolean dropInvalid,
        boolean enableIpv6,
        Cidr hostIpv4LoopbackCidr) {

    /** Istio's default proxy UID and GID. */
    public static final String DEFAULT_PROXY_ID = "1337";
    /** The port of the agent's DNS proxy. */
    public static final int AGENT_DNS_PORT = 15053;
    /** The mark the proxy puts on its own packets to the app in TPROXY mode. */
    public static final int OUTBOUND_MARK = 1338;
    /** Source address of the proxy's inbound passthrough connections to the app, IPv4 and IPv6. */
    public static final String PASSTHROUGH_SOURCE_V4 = "127.0.0.6/32";
    public static final String PASSTHROUGH_SOURCE_V6 = "::6/128";
    /** Most groups one rule may list (every group is one match of the rule). */
    public static final int MAX_OWNER_GROUPS_INCLUDE = 64;

    private static final Pattern INTERFACE = Pattern.compile("[A-Za-z0-9_.:@+-]{1,15}");
    private static final Pattern GROUP = Pattern.compile("[A-Za-z0-9_.][A-Za-z0-9_.-]*\\$?");
    private static final long MAX_ID = 4294967294L;

    public CaptureConfig {
        checkPort("envoy-port", proxyPort);
        checkPort("inbound-capture-port", inboundCapturePort);
        checkPort("inbound-tunnel-port", inboundTunnelPort);
        proxyUids = checkIds("proxy-uid", proxyUids);
        proxyGids = checkIds("proxy-gid", proxyGids);
        Objects.requireNonNull(interceptionMode, "istio-inbound-interception-mode");
        checkUnsigned32("istio-inbound-tproxy-mark", inboundTproxyMark, 1);
        checkUnsigned32("istio-inbound-tproxy-route-table", inboundTproxyRouteTable, 1);
        Objects.requireNonNull(inboundPorts, "istio-inbound-ports");
        inboundPorts.ports().forEach(p -> checkPort("istio-inbound-ports", p));
        inboundPortsExclude = checkPorts("istio-local-exclude-ports", inboundPortsExclude);
        outboundPortsInclude = checkPorts("istio-outbound-ports", outboundPortsInclude);
        outboundPortsExclude = checkPorts("istio-local-outbound-ports-exclude", outboundPortsExclude);
        Objects.requireNonNull(outboundIpRangesInclude, "istio-service-cidr");
        outboundIpRangesExclude = List.copyOf(outboundIpRangesExclude);
        kubeVirtInterfaces = checkInterfaces("kube-virt-interfaces", kubeVirtInterfaces);
        excludeInterfaces = checkInterfaces("istio-exclude-interfaces", excludeInterfaces);
        Objects.requireNonNull(ownerGroups, "ownerGroups");
        dnsServersV4 = List.copyOf(dnsServersV4);
        dnsServersV6 = List.copyOf(dnsServersV6);
        for (String s : dnsServersV4) {
            if (!Cidr.isIpv4Literal(s)) {
                throw new IllegalArgumentException("dns-servers-v4: " + s + " (expected: an IPv4 address)");
            }
        }
        for (String s : dnsServersV6) {
            if (!Cidr.isIpv6Literal(s)) {
                throw new IllegalArgumentException("dns-servers-v6: " + s + " (expected: an IPv6 address)");
            }
        }
        Objects.requireNonNull(hostIpv4LoopbackCidr, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR");
        // as istio-iptables validates it: an IPv4 loopback address, with a mask of 8 to 32 bits
        if (hostIpv4LoopbackCidr.family() != IpFamily.V4 || !hostIpv4LoopbackCidr.isLoopback()
                || hostIpv4LoopbackCidr.prefixLength() < 8) {
            throw new IllegalArgumentException("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR: " + hostIpv4LoopbackCidr
                    + " (expected: an IPv4 loopback range, 127.x.x.x/8 to /32)");
        }
    }

    /** This configuration with another interception mode and IPv6 on or off. */
    public CaptureConfig with(InterceptionMode mode, boolean ipv6) {
        return new CaptureConfig(proxyPort, inboundCapturePort, inboundTunnelPort, proxyUids, proxyGids, mode,
                inboundTproxyMark, inboundTproxyRouteTable, inboundPorts, inboundPortsExclude, outboundPortsInclude,
                outboundPortsExclude, outboundIpRangesInclude, outboundIpRangesExclude, kubeVirtInterfaces,
                excludeInterfaces, ownerGroups, redirectDns, captureAllDns, dnsServersV4, dnsServersV6, dropInvalid,
                ipv6, hostIpv4LoopbackCidr);
    }

    /** A builder starting from istio-iptables' defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** True when DNS redirection produces rules: asked for, and either all DNS or at least one server to match. */
    public boolean dnsRedirectionActive() {
        return redirectDns && (captureAllDns || !dnsServersV4.isEmpty() || !dnsServersV6.isEmpty());
    }

    /** The inbound ports: every port ({@code *}), or a list (empty: inbound capture off). */
    public record PortSelection(boolean all, List<Integer> ports) {
        public PortSelection {
            ports = List.copyOf(ports);
            if (all && !ports.isEmpty()) {
                throw new IllegalArgumentException("a port selection is either all ports or a list");
            }
        }

        public static PortSelection allPorts() {
            return new PortSelection(true, List.of());
        }

        public static PortSelection of(List<Integer> ports) {
            return new PortSelection(false, ports);
        }
    }

    /** The outbound destinations: everything ({@code *}), or a list of ranges (empty: outbound capture off). */
    public record CidrSelection(boolean all, List<Cidr> cidrs) {
        public CidrSelection {
            cidrs = List.copyOf(cidrs);
            if (all && !cidrs.isEmpty()) {
                throw new IllegalArgumentException("a range selection is either everything or a list");
            }
        }

        public static CidrSelection everything() {
            return new CidrSelection(true, List.of());
        }

        public static CidrSelection of(List<Cidr> cidrs) {
            return new CidrSelection(false, cidrs);
        }

        public List<Cidr> of(IpFamily family) {
            return cidrs.stream().filter(c -> c.family() == family).toList();
        }

        public boolean hasLoopback() {
            return cidrs.stream().anyMatch(Cidr::isLoopback);
        }
    }

    /**
     * Whose outbound traffic is captured, by group: all groups except some ({@code except}), or only the listed ones.
     */
    public record OwnerGroupFilter(boolean except, List<String> groups) {
        public OwnerGroupFilter {
            groups = List.copyOf(groups);
            for (String g : groups) {
                if (!GROUP.matcher(g).matches()) {
                    throw new IllegalArgumentException("owner group: " + g + " (expected: a group name or GID)");
                }
            }
            if (!except && groups.isEmpty()) {
                throw new IllegalArgumentException("ISTIO_OUTBOUND_OWNER_GROUPS: empty (expected: * or groups)");
            }
            if (!except && groups.size() > MAX_OWNER_GROUPS_INCLUDE) {
                throw new IllegalArgumentException("ISTIO_OUTBOUND_OWNER_GROUPS: " + groups.size()
                        + " groups (expected: at most " + MAX_OWNER_GROUPS_INCLUDE + ")");
            }
        }

        public static OwnerGroupFilter all() {
            return new OwnerGroupFilter(true, List.of());
        }

        /** Istio's reading: an include list of {@code *} means "all but the excluded", else only the included. */
        public static OwnerGroupFilter parse(String include, String exclude) {
            if (include == null || include.isEmpty() || include.equals("*")) {
                return new OwnerGroupFilter(true, split(exclude));
            }
            return new OwnerGroupFilter(false, split(include));
        }
    }

    /** Splits a comma separated flag value, dropping empty items (Istio accepts {@code 6000,7000,}). */
    public static List<String> split(String value) {
        List<String> out = new ArrayList<>();
        if (value == null) {
            return out;
        }
        for (String s : value.split(",", -1)) {
            String t = s.trim();
            if (!t.isEmpty()) {
                out.add(t);
            }
        }
        return out;
    }

    private static void checkPort(String flag, int port) {
        if (port < 1 || port > 65535) {
            throw new IllegalArgumentException(flag + ": " + port + " (expected: 1..65535)");
        }
    }

    private static List<Integer> checkPorts(String flag, List<Integer> ports) {
        ports.forEach(p -> checkPort(flag, p));
        return List.copyOf(ports);
    }

    /** Numeric IDs, or names: iptables' --uid-owner and --gid-owner look a name up themselves. */
    private static List<String> checkIds(String flag, List<String> ids) {
        if (ids.isEmpty()) {
            throw new IllegalArgumentException(flag + ": empty (expected: one or more IDs or names)");
        }
        for (String id : ids) {
            boolean numeric = isDecimal(id) && id.length() <= 10 && Long.parseLong(id) <= MAX_ID;
            if (!numeric && (isDecimal(id) || !GROUP.matcher(id).matches())) {
                throw new IllegalArgumentException(flag + ": " + id + " (expected: an ID, 0.." + MAX_ID
                        + ", or a name)");
            }
        }
        return List.copyOf(ids);
    }

    private static void checkUnsigned32(String flag, long value, long min) {
        if (value < min || value > 0xffffffffL) {
            throw new IllegalArgumentException(flag + ": " + value + " (expected: " + min + "..4294967295)");
        }
    }

    private static List<String> checkInterfaces(String flag, List<String> names) {
        for (String n : names) {
            if (!INTERFACE.matcher(n).matches()) {
                throw new IllegalArgumentException(flag + ": " + n + " (expected: interface names of 1..15 letters,"
                        + " digits or _.:@+-)");
            }
        }
        return List.copyOf(names);
    }

    static boolean isDecimal(String s) {
        return !s.isEmpty() && s.chars().allMatch(c -> c >= '0' && c <= '9');
    }

    /**
     * Builds a {@link CaptureConfig} from flag values as istio-iptables spells them. Each setter takes the raw text;
     * {@link #build()} parses it and reports the first bad value by flag name.
     */
    public static final class Builder {
        private String proxyPort = "15001";
        private String inboundCapturePort = "15006";
        private String inboundTunnelPort = "15008";
        private String proxyUid = DEFAULT_PROXY_ID;
        private String proxyGid = "";
        private String mode = "";
        private String tproxyMark = "1337";
        private String tproxyRouteTable = "133";
        private String inboundPorts = "";
        private String inboundPortsExclude = "";
        private String outboundPorts = "";
        private String outboundPortsExclude = "";
        private String serviceCidr = "";
        private String serviceExcludeCidr = "";
        private String kubeVirtInterfaces = "";
        private String excludeInterfaces = "";
        private String ownerGroupsInclude = "*";
        private String ownerGroupsExclude = "";
        private boolean redirectDns;
        private boolean captureAllDns;
        private List<String> dnsServersV4 = List.of();
        private List<String> dnsServersV6 = List.of();
        private boolean dropInvalid;
        private boolean enableIpv6;
        private String hostIpv4LoopbackCidr = "127.0.0.1/32";
        private Consumer<String> ignored = message -> { };

        private Builder() {}

        /** Where {@link #build()} reports the flag entries it skips, as istio-iptables skips them. */
        public Builder onIgnored(Consumer<String> v) { ignored = Objects.requireNonNull(v); return this; }

        public Builder proxyPort(String v) { proxyPort = v; return this; }
        public Builder inboundCapturePort(String v) { inboundCapturePort = v; return this; }
        public Builder inboundTunnelPort(String v) { inboundTunnelPort = v; return this; }
        public Builder proxyUid(String v) { proxyUid = v; return this; }
        /** Empty means "the same as the UIDs", as in Istio. */
        public Builder proxyGid(String v) { proxyGid = v; return this; }
        public Builder interceptionMode(String v) { mode = v; return this; }
        public Builder inboundTproxyMark(String v) { tproxyMark = v; return this; }
        public Builder inboundTproxyRouteTable(String v) { tproxyRouteTable = v; return this; }
        public Builder inboundPorts(String v) { inboundPorts = v; return this; }
        public Builder inboundPortsExclude(String v) { inboundPortsExclude = v; return this; }
        public Builder outboundPorts(String v) { outboundPorts = v; return this; }
        public Builder outboundPortsExclude(String v) { outboundPortsExclude = v; return this; }
        public Builder serviceCidr(String v) { serviceCidr = v; return this; }
        public Builder serviceExcludeCidr(String v) { serviceExcludeCidr = v; return this; }
        public Builder kubeVirtInterfaces(String v) { kubeVirtInterfaces = v; return this; }
        public Builder excludeInterfaces(String v) { excludeInterfaces = v; return this; }
        public Builder ownerGroupsInclude(String v) { ownerGroupsInclude = v; return this; }
        public Builder ownerGroupsExclude(String v) { ownerGroupsExclude = v; return this; }
        public Builder redirectDns(boolean v) { redirectDns = v; return this; }
        public Builder captureAllDns(boolean v) { captureAllDns = v; return this; }
        public Builder dnsServersV4(List<String> v) { dnsServersV4 = List.copyOf(v); return this; }
        public Builder dnsServersV6(List<String> v) { dnsServersV6 = List.copyOf(v); return this; }
        public Builder dropInvalid(boolean v) { dropInvalid = v; return this; }
        public Builder enableIpv6(boolean v) { enableIpv6 = v; return this; }
        public Builder hostIpv4LoopbackCidr(String v) { hostIpv4LoopbackCidr = v; return this; }

        /** Parses and validates every value; the first bad one throws {@link IllegalArgumentException}. */
        public CaptureConfig build() {
            List<String> uids = split(proxyUid);
            List<String> gids = proxyGid == null || proxyGid.isEmpty() ? uids : split(proxyGid);
            CidrSelection include = parseCidrSelection("istio-service-cidr", serviceCidr, ignored);
            if (serviceExcludeCidr != null && serviceExcludeCidr.trim().equals("*")) {
                throw new IllegalArgumentException("istio-service-exclude-cidr: * (expected: a list of ranges; "
                        + "a wildcard would exclude everything)");
            }
            List<Cidr> exclude = parseCidrs("istio-service-exclude-cidr", serviceExcludeCidr, ignored);
            return new CaptureConfig(
                    parsePort("envoy-port", proxyPort),
                    parsePort("inbound-capture-port", inboundCapturePort),
                    parsePort("inbound-tunnel-port", inboundTunnelPort),
                    uids,
                    gids,
                    InterceptionMode.parse(mode),
                    parseUnsigned("istio-inbound-tproxy-mark", tproxyMark),
                    parseUnsigned("istio-inbound-tproxy-route-table", tproxyRouteTable),
                    parsePortSelection("istio-inbound-ports", inboundPorts),
                    parsePorts("istio-local-exclude-ports", inboundPortsExclude),
                    parsePorts("istio-outbound-ports", outboundPorts),
                    parsePorts("istio-local-outbound-ports-exclude", outboundPortsExclude),
                    include,
                    exclude,
                    split(kubeVirtInterfaces),
                    split(excludeInterfaces),
                    OwnerGroupFilter.parse(ownerGroupsInclude, ownerGroupsExclude),
                    redirectDns,
                    captureAllDns,
                    dnsServersV4,
                    dnsServersV6,
                    dropInvalid,
                    enableIpv6,
                    Cidr.parse("ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", hostIpv4LoopbackCidr));
        }

        private static int parsePort(String flag, String text) {
            String t = text == null ? "" : text.trim();
            if (!isDecimal(t) || t.length() > 6) {
                throw new IllegalArgumentException(flag + ": " + text + " (expected: 1..65535)");
            }
            int port = Integer.parseInt(t);
            checkPort(flag, port);
            return port;
        }

        private static List<Integer> parsePorts(String flag, String text) {
            List<Integer> out = new ArrayList<>();
            for (String s : split(text)) {
                if (s.equals("*")) {
                    throw new IllegalArgumentException(flag + ": * (expected: a list of ports, 1..65535)");
                }
                out.add(parsePort(flag, s));
            }
            return out;
        }

        private static PortSelection parsePortSelection(String flag, String text) {
            if (text != null && text.trim().equals("*")) {
                return PortSelection.allPorts();
            }
            return PortSelection.of(parsePorts(flag, text));
        }

        /**
         * A number as iptables and ip read a mark or a table (C's strtoul with base 0): {@code 0x} hexadecimal, a
         * leading {@code 0} octal, else decimal. istio-iptables hands the text to them as it is.
         */
        private static long parseUnsigned(String flag, String text) {
            String t = text == null ? "" : text.trim();
            int radix = 10;
            String digits = t;
            if (t.startsWith("0x") || t.startsWith("0X")) {
                radix = 16;
                digits = t.substring(2);
            } else if (t.length() > 1 && t.startsWith("0")) {
                radix = 8;
                digits = t.substring(1);
            }
            String expected = " (expected: 1..4294967295, decimal, 0x hexadecimal or 0 octal)";
            if (digits.isEmpty() || digits.length() > 11 || digits.startsWith("+") || digits.startsWith("-")) {
                throw new IllegalArgumentException(flag + ": " + text + expected);
            }
            long value;
            try {
                value = Long.parseLong(digits, radix);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(flag + ": " + text + expected);
            }
            if (value < 1 || value > 0xFFFFFFFFL) {
                throw new IllegalArgumentException(flag + ": " + text + expected);
            }
            return value;
        }

        /**
         * The ranges of a list; an entry that is not a range is skipped and reported, not an error: istio-iptables
         * keeps going without it ("for bug compatibility" with its shell ancestor), so a typo there never stopped a
         * pod from starting.
         */
        private static List<Cidr> parseCidrs(String flag, String text, Consumer<String> ignored) {
            List<Cidr> out = new ArrayList<>();
            for (String s : split(text)) {
                try {
                    out.add(Cidr.parse(flag, s));
                } catch (IllegalArgumentException e) {
                    ignored.accept("ignoring " + e.getMessage() + ", as istio-iptables does");
                }
            }
            return out;
        }

        private static CidrSelection parseCidrSelection(String flag, String text, Consumer<String> ignored) {
            if (text != null && text.trim().equals("*")) {
                return CidrSelection.everything();
            }
            return CidrSelection.of(parseCidrs(flag, text, ignored));
        }
    }
}

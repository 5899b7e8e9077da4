package dev.inmesh.interception;

import dev.inmesh.interception.install.CommandRunner;
import dev.inmesh.interception.install.InstallException;
import dev.inmesh.interception.install.IptablesBinaries;
import dev.inmesh.interception.install.ProcessCommandRunner;
import dev.inmesh.interception.install.RuleInstaller;
import dev.inmesh.interception.rules.CaptureConfig;
import dev.inmesh.interception.rules.InterceptionMode;
import dev.inmesh.interception.rules.IpFamily;
import dev.inmesh.interception.rules.RuleGenerator;
import dev.inmesh.interception.rules.RuleSet;
import dev.inmesh.interception.validation.CaptureProbe;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code inmesh iptables}: istio-iptables' flags, environment variables and defaults; generates the capture rules
 * and installs, validates, prints or removes them. Exit codes, as istio-iptables': 0 done, 1 a bad flag value (nothing
 * applied) or a step failed (and was rolled back), 126 {@code --run-validation} saw no capture; a flag picocli cannot
 * parse (an unknown one) is a usage error, 2 (istio-iptables exits 255 for those).
 */
@Command(
        name = "iptables",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        usageHelpWidth = 120,
        description = {
            "Installs istio-iptables compatible rules that send a workload's TCP traffic through the proxy.",
            "Flags fall back to istio-iptables' environment variables (ENVOY_PORT, ISTIO_INBOUND_PORTS, ...)."
        })
public final class IptablesCommand implements Callable<Integer> {
    static final int EXIT_OK = 0;
    static final int EXIT_FAILED = 1;
    static final int EXIT_VALIDATION_FAILED = 126;

    @Option(names = {"-p", "--envoy-port"}, paramLabel = "PORT",
            description = "Port outbound TCP is redirected to (env ENVOY_PORT, default 15001).")
    String envoyPort;

    @Option(names = {"-z", "--inbound-capture-port"}, paramLabel = "PORT",
            description = "Port inbound TCP is redirected to (env INBOUND_CAPTURE_PORT, default 15006).")
    String inboundCapturePort;

    @Option(names = {"-e", "--inbound-tunnel-port"}, paramLabel = "PORT",
            description = "Tunnel port, never captured (env INBOUND_TUNNEL_PORT, default 15008).")
    String inboundTunnelPort;

    @Option(names = {"-u", "--proxy-uid"}, paramLabel = "UIDS",
            description = "UIDs or user names of the proxy, whose traffic is not captured (env PROXY_UID; default:"
                    + " the UID of $ENVOY_USER, istio-proxy, else 1337).")
    String proxyUid;

    @Option(names = {"-g", "--proxy-gid"}, paramLabel = "GIDS",
            description = "GIDs or group names of the proxy (env PROXY_GID; default: the UIDs).")
    String proxyGid;

    @Option(names = {"-m", "--istio-inbound-interception-mode"}, paramLabel = "MODE",
            description = "TPROXY, else REDIRECT (env ISTIO_INBOUND_INTERCEPTION_MODE, default REDIRECT).")
    String mode;

    @Option(names = {"-t", "--istio-inbound-tproxy-mark"}, paramLabel = "MARK",
            description = "Packet mark for TPROXY: decimal, 0x hex or 0 octal (env ISTIO_INBOUND_TPROXY_MARK,"
                    + " default 1337).")
    String tproxyMark;

    @Option(names = {"-r", "--istio-inbound-tproxy-route-table"}, paramLabel = "TABLE",
            description = "Routing table for TPROXY (env ISTIO_INBOUND_TPROXY_ROUTE_TABLE, default 133).")
    String tproxyRouteTable;

    @Option(names = {"-b", "--istio-inbound-ports"}, paramLabel = "PORTS",
            description = "Inbound ports to capture, or * (env ISTIO_INBOUND_PORTS; empty: none).")
    String inboundPorts;

    @Option(names = {"-d", "--istio-local-exclude-ports"}, paramLabel = "PORTS",
            description = "Inbound ports not captured when -b is * (env ISTIO_LOCAL_EXCLUDE_PORTS).")
    String inboundExcludePorts;

    @Option(names = {"-c", "--istio-exclude-interfaces"}, paramLabel = "NICS",
            description = "Interfaces never captured (env ISTIO_EXCLUDE_INTERFACES).")
    String excludeInterfaces;

    @Option(names = {"-i", "--istio-service-cidr"}, paramLabel = "CIDRS",
            description = "Outbound destinations to capture, or * (env ISTIO_SERVICE_CIDR; empty: none).")
    String serviceCidr;

    @Option(names = {"-x", "--istio-service-exclude-cidr"}, paramLabel = "CIDRS",
            description = "Outbound destinations never captured (env ISTIO_SERVICE_EXCLUDE_CIDR).")
    String serviceExcludeCidr;

    @Option(names = {"-q", "--istio-outbound-ports"}, paramLabel = "PORTS",
            description = "Outbound ports always captured (env ISTIO_OUTBOUND_PORTS).")
    String outboundPorts;

    @Option(names = {"-o", "--istio-local-outbound-ports-exclude"}, paramLabel = "PORTS",
            description = "Outbound ports never captured (env ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE).")
    String outboundExcludePorts;

    @Option(names = {"-k", "--kube-virt-interfaces"}, paramLabel = "NICS",
            description = "Interfaces whose inbound traffic counts as outbound (env KUBE_VIRT_INTERFACES).")
    String kubeVirtInterfaces;

    @Option(names = "--redirect-dns", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Send DNS to the agent on 15053 (env REDIRECT_DNS, then ISTIO_META_DNS_CAPTURE).")
    Boolean redirectDns;

    @Option(names = "--capture-all-dns", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "With --redirect-dns: all port 53 traffic, not just the name servers' (env CAPTURE_ALL_DNS).")
    Boolean captureAllDns;

    @Option(names = "--drop-invalid", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Drop packets conntrack finds INVALID (env DROP_INVALID, then INVALID_DROP).")
    Boolean dropInvalid;

    @Option(names = "--dns-servers-v4", paramLabel = "ADDRS",
            description = "IPv4 name servers for --redirect-dns (default: /etc/resolv.conf). Giving this,"
                    + " --dns-servers-v6 or --enable-ipv6 makes the output independent of the host.")
    String dnsServersV4;

    @Option(names = "--dns-servers-v6", paramLabel = "ADDRS",
            description = "IPv6 name servers for --redirect-dns (default: /etc/resolv.conf).")
    String dnsServersV6;

    @Option(names = "--enable-ipv6", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Also install ip6tables rules (default: when the host is IPv6-only, or with --dual-stack"
                    + " when it has a global IPv6 address).")
    Boolean enableIpv6;

    @Option(names = "--dual-stack", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Install ip6tables rules too when the host has a global IPv6 address, even if it also has"
                    + " IPv4 ones (env DUAL_STACK, then ISTIO_DUAL_STACK).")
    Boolean dualStack;

    @Option(names = {"-n", "--dry-run"}, arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Print the iptables-restore input (IPv4, then IPv6) instead of applying it, also to"
                    + " $DRY_RUN_FILE_PATH when set (env DRY_RUN).")
    Boolean dryRun;

    @Option(names = "--cleanup-only", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Remove the rules (ISTIO_ chains, jumps into them, the TPROXY route) and stop"
                    + " (env CLEANUP_ONLY).")
    Boolean cleanupOnly;

    @Option(names = "--reconcile", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Replace ISTIO_ rules that differ from this configuration (env RECONCILE, default true).")
    Boolean reconcile;

    @Option(names = "--skip-rule-apply", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Apply nothing (for example to only --run-validation) (env SKIP_RULE_APPLY).")
    Boolean skipRuleApply;

    @Option(names = "--run-validation", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Check that a connection to 127.0.0.6:PROBE_PORT is captured; exit 126 if not"
                    + " (env RUN_VALIDATION).")
    Boolean runValidation;

    @Option(names = "--iptables-probe-port", paramLabel = "PORT",
            description = "Probe port of --run-validation (env IPTABLES_PROBE_PORT, default 15002).")
    String probePort;

    @Option(names = "--probe-timeout", paramLabel = "DURATION",
            description = "How long --run-validation tries, like 5s or 1500ms (env PROBE_TIMEOUT, default 5s).")
    String probeTimeout;

    @Option(names = "--network-namespace", paramLabel = "NETNS",
            description = "Apply inside this network namespace: a name from `ip netns` or a path like"
                    + " /proc/PID/ns/net (env NETWORK_NAMESPACE).")
    String networkNamespace;

    @Option(names = "--force-apply", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Apply without first reading what is installed; existing ISTIO_ chains then make the"
                    + " install fail (env FORCE_APPLY).")
    Boolean forceApply;

    @Option(names = "--force-iptables-binary", paramLabel = "legacy|nft",
            description = "Use iptables-legacy or iptables-nft (and their ip6tables) instead of choosing; other"
                    + " values choose (env FORCE_IPTABLES_BINARY).")
    String forceIptablesBinary;

    @Option(names = "--cni-mode", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Accepted for istio-iptables' CNI plugin; changes nothing here (env CNI_MODE).")
    Boolean cniMode;

    @Option(names = "--native-nftables", arity = "0..1", fallbackValue = "true",
            converter = GoBool.class, paramLabel = "BOOL",
            description = "Native nftables rules: not supported, refused (env NATIVE_NFTABLES).")
    Boolean nativeNftables;

    @Spec
    CommandSpec spec;

    private final Function<String, String> env;
    private final Function<String, CommandRunner> runners;

    public IptablesCommand() {
        this(System::getenv, ProcessCommandRunner::inNamespace);
    }

    /** For tests: the environment and the command runner (per network namespace) are given. */
    IptablesCommand(Function<String, String> env, Function<String, CommandRunner> runners) {
        this.env = env;
        this.runners = runners;
    }

    /** Parses as istio-iptables' flags (Go's pflag) do: of a flag given twice, the last value counts. */
    public static CommandLine configure(CommandLine commandLine) {
        return commandLine.setOverwrittenOptionsAllowed(true);
    }

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        Invocation inv;
        try {
            inv = resolve();
        } catch (IllegalArgumentException e) {
            // istio-iptables exits 1 both when its configuration is invalid and when iptables refuses a value
            err.println("inmesh iptables: " + e.getMessage());
            err.flush();
            return EXIT_FAILED;
        } catch (IOException e) {
            err.println("inmesh iptables: cannot read the name servers: " + e.getMessage());
            err.flush();
            return EXIT_FAILED;
        }
        RuleSet rules = RuleGenerator.generate(inv.config());
        CommandRunner runner = runners.apply(inv.namespace());
        Consumer<String> log = line -> {
            err.println(line);
            err.flush();
        };
        if (inv.dryRun()) {
            String text = new RuleInstaller(runner, inv.config(), rules, log).dryRunText();
            out.print(text);
            out.flush();
            // istio-iptables' dry run also writes what it would run to DRY_RUN_FILE_PATH
            String file = env.apply("DRY_RUN_FILE_PATH");
            if (file != null && !file.isEmpty()) {
                try {
                    Files.writeString(Path.of(file), text);
                } catch (IOException | RuntimeException e) {
                    err.println("inmesh iptables: cannot write DRY_RUN_FILE_PATH " + file + ": " + e);
                    err.flush();
                    return EXIT_FAILED;
                }
            }
            return EXIT_OK;
        }
        try {
            if (inv.cleanupOnly() || !inv.skipRuleApply()) {
                enter(runner, inv.namespace());
                List<IptablesBinaries> binaries = new ArrayList<>();
                List<IpFamily> families = RuleInstaller.families(inv.config());
                for (IpFamily f : IpFamily.values()) {
                    try {
                        binaries.add(IptablesBinaries.detect(runner, f, inv.forcedBinary()));
                    } catch (InstallException e) {
                        if (families.contains(f)) {
                            throw e;
                        }
                        // a family this configuration leaves alone is only looked at for an earlier install's rules
                    }
                }
                RuleInstaller installer = new RuleInstaller(runner, inv.config(), rules, log, binaries);
                if (inv.cleanupOnly()) {
                    installer.cleanup();
                    log.accept("iptables: removed the ISTIO_ rules");
                    return EXIT_OK;
                }
                RuleInstaller.Outcome outcome = inv.forceApply() ? installer.forceApply()
                        : installer.install(inv.reconcile());
                log.accept("iptables: " + outcome.name().toLowerCase(Locale.ROOT));
            }
        } catch (InstallException e) {
            err.println("inmesh iptables: " + e.getMessage());
            err.flush();
            return EXIT_FAILED;
        }
        if (inv.runValidation()) {
            CaptureProbe.Result result = CaptureProbe.run(inv.probe());
            err.println("iptables validation: " + result.detail());
            err.flush();
            return result.captured() ? EXIT_OK : EXIT_VALIDATION_FAILED;
        }
        return EXIT_OK;
    }

    /** Checks that commands run in the namespace, so that a wrong name is reported as such. */
    private static void enter(CommandRunner runner, String namespace) throws InstallException {
        if (namespace.isEmpty()) {
            return;
        }
        CommandRunner.Result result = runner.run(List.of("true"));
        if (!result.ok()) {
            throw new InstallException("cannot enter the network namespace " + namespace + ": "
                    + result.firstErrorLine());
        }
    }

    /** Everything one run needs, resolved from flags, environment and host. */
    record Invocation(CaptureConfig config, boolean dryRun, boolean cleanupOnly, boolean reconcile,
                      boolean skipRuleApply, boolean runValidation, CaptureProbe.Settings probe, String namespace,
                      boolean forceApply, String forcedBinary) {}

    Invocation resolve() throws IOException {
        if (bool(nativeNftables, false, "NATIVE_NFTABLES")) {
            // writing iptables rules instead would leave a pod that asked for nftables with something else
            throw new IllegalArgumentException("native-nftables: native nftables rules are not supported; inmesh"
                    + " installs iptables rules (with --force-iptables-binary=nft, through iptables-nft)");
        }
        bool(cniMode, false, "CNI_MODE");
        String forcedBinary = str(forceIptablesBinary, "FORCE_IPTABLES_BINARY", "");
        if (!forcedBinary.isEmpty() && !forcedBinary.equals("legacy") && !forcedBinary.equals("nft")) {
            warn("force-iptables-binary: " + forcedBinary + " is neither legacy nor nft; choosing the binaries, as"
                    + " istio-iptables does");
            forcedBinary = "";
        }
        String modeText = str(mode, "ISTIO_INBOUND_INTERCEPTION_MODE", "");
        if (!InterceptionMode.isKnown(modeText)) {
            warn("istio-inbound-interception-mode: " + modeText + " is neither REDIRECT nor TPROXY; using REDIRECT,"
                    + " as istio-iptables does");
        }
        boolean redirect = bool(redirectDns, false, "REDIRECT_DNS", "ISTIO_META_DNS_CAPTURE");
        boolean allDns = bool(captureAllDns, false, "CAPTURE_ALL_DNS");
        // Host facts are read only when none of the three "repeatable output" flags is given.
        boolean pinned = dnsServersV4 != null || dnsServersV6 != null || enableIpv6 != null;
        List<String> v4Servers = CaptureConfig.split(dnsServersV4);
        List<String> v6Servers = CaptureConfig.split(dnsServersV6);
        if (!pinned && redirect && !allDns) {
            HostFacts.NameServers servers = HostFacts.nameServers(Path.of("/etc/resolv.conf"));
            v4Servers = servers.v4();
            v6Servers = servers.v6();
        }
        boolean ipv6 = pinned ? Boolean.TRUE.equals(enableIpv6)
                : HostFacts.hostIsIpv6(bool(dualStack, false, "DUAL_STACK", "ISTIO_DUAL_STACK"));
        String uid = str(proxyUid, "PROXY_UID", "");
        if (uid.isEmpty()) {
            String user = str(null, "ENVOY_USER", "istio-proxy");
            String found = HostFacts.uidOf(user);
            uid = found != null ? found : CaptureConfig.DEFAULT_PROXY_ID;
        }
        CaptureConfig config = CaptureConfig.builder()
                .proxyPort(str(envoyPort, "ENVOY_PORT", "15001"))
                .inboundCapturePort(str(inboundCapturePort, "INBOUND_CAPTURE_PORT", "15006"))
                .inboundTunnelPort(str(inboundTunnelPort, "INBOUND_TUNNEL_PORT", "15008"))
                .proxyUid(uid)
                .proxyGid(str(proxyGid, "PROXY_GID", ""))
                .interceptionMode(modeText)
                .inboundTproxyMark(str(tproxyMark, "ISTIO_INBOUND_TPROXY_MARK", "1337"))
                .inboundTproxyRouteTable(str(tproxyRouteTable, "ISTIO_INBOUND_TPROXY_ROUTE_TABLE", "133"))
                .inboundPorts(str(inboundPorts, "ISTIO_INBOUND_PORTS", ""))
                .inboundPortsExclude(str(inboundExcludePorts, "ISTIO_LOCAL_EXCLUDE_PORTS", ""))
                .excludeInterfaces(str(excludeInterfaces, "ISTIO_EXCLUDE_INTERFACES", ""))
                .serviceCidr(str(serviceCidr, "ISTIO_SERVICE_CIDR", ""))
                .serviceExcludeCidr(str(serviceExcludeCidr, "ISTIO_SERVICE_EXCLUDE_CIDR", ""))
                .outboundPorts(str(outboundPorts, "ISTIO_OUTBOUND_PORTS", ""))
                .outboundPortsExclude(str(outboundExcludePorts, "ISTIO_LOCAL_OUTBOUND_PORTS_EXCLUDE", ""))
                .kubeVirtInterfaces(str(kubeVirtInterfaces, "KUBE_VIRT_INTERFACES", ""))
                .ownerGroupsInclude(str(null, "ISTIO_OUTBOUND_OWNER_GROUPS", "*"))
                .ownerGroupsExclude(str(null, "ISTIO_OUTBOUND_OWNER_GROUPS_EXCLUDE", ""))
                .hostIpv4LoopbackCidr(str(null, "ISTIO_OUTBOUND_IPV4_LOOPBACK_CIDR", "127.0.0.1/32"))
                .redirectDns(redirect)
                .captureAllDns(allDns)
                .dnsServersV4(v4Servers)
                .dnsServersV6(v6Servers)
                .dropInvalid(bool(dropInvalid, false, "DROP_INVALID", "INVALID_DROP"))
                .enableIpv6(ipv6)
                .onIgnored(this::warn)
                .build();
        boolean validate = bool(runValidation, false, "RUN_VALIDATION");
        String namespace = str(networkNamespace, "NETWORK_NAMESPACE", "");
        CaptureProbe.Settings probe = new CaptureProbe.Settings(
                parseProbePort(str(probePort, "IPTABLES_PROBE_PORT", "15002")),
                List.of(config.inboundCapturePort(), config.proxyPort()),
                probeId(validate, "proxy-uid", config.proxyUids().get(0), HostFacts::uidOf),
                probeId(validate, "proxy-gid", config.proxyGids().get(0), HostFacts::gidOf),
                parseDuration("probe-timeout", str(probeTimeout, "PROBE_TIMEOUT", "5s")),
                namespace);
        return new Invocation(config,
                bool(dryRun, false, "DRY_RUN"),
                bool(cleanupOnly, false, "CLEANUP_ONLY"),
                bool(reconcile, true, "RECONCILE"),
                bool(skipRuleApply, false, "SKIP_RULE_APPLY"),
                validate,
                probe,
                namespace,
                bool(forceApply, false, "FORCE_APPLY"),
                forcedBinary);
    }

    /**
     * The numeric ID the validation probe runs as. A name is looked up in this host's /etc/passwd or /etc/group;
     * only the probe needs the number (iptables takes the name).
     */
    private static long probeId(boolean validate, String flag, String id, Function<String, String> lookup) {
        boolean number = !id.isEmpty() && id.length() <= 10 && id.chars().allMatch(c -> c >= '0' && c <= '9');
        String numeric = number ? id : lookup.apply(id);
        if (numeric == null) {
            if (validate) {
                throw new IllegalArgumentException(flag + ": " + id + " is not known on this host, and"
                        + " --run-validation needs its number");
            }
            return -1;
        }
        return Long.parseLong(numeric);
    }

    private String str(String flag, String envName, String def) {
        if (flag != null) {
            return flag;
        }
        String value = env.apply(envName);
        return value != null ? value : def;
    }

    /**
     * A boolean flag, else its environment variables, else the default. istio-iptables sets a flag from its own
     * variable and then from the extra ones it also reads (ISTIO_META_DNS_CAPTURE for --redirect-dns, INVALID_DROP
     * for --drop-invalid, ISTIO_DUAL_STACK for --dual-stack), so of two variables set the later one wins; the command
     * line wins over both. A value Go cannot read as a boolean is ignored, as istio-iptables ignores it.
     */
    private boolean bool(Boolean flag, boolean def, String... envNames) {
        if (flag != null) {
            return flag;
        }
        boolean value = def;
        for (String name : envNames) {
            String text = env.apply(name);
            if (text == null || text.isEmpty()) {
                continue;
            }
            Boolean b = goBool(text);
            if (b == null) {
                warn(name + "=" + text + " is not a boolean (true, false, 1, 0, t, f); ignored, as istio-iptables"
                        + " ignores it");
            } else {
                value = b;
            }
        }
        return value;
    }

    private void warn(String message) {
        PrintWriter err = spec.commandLine().getErr();
        err.println("inmesh iptables: " + message);
        err.flush();
    }

    /** Reads a boolean flag's value with Go's spellings ({@code --redirect-dns=1}), as istio-iptables' flags do. */
    static final class GoBool implements CommandLine.ITypeConverter<Boolean> {
        @Override
        public Boolean convert(String value) {
            Boolean b = goBool(value);
            if (b == null) {
                throw new CommandLine.TypeConversionException("'" + value + "' is not a boolean (true, false, 1, 0,"
                        + " t, f)");
            }
            return b;
        }
    }

    /** A value as Go's {@code strconv.ParseBool} reads it (Istio's boolean environment variables), or null. */
    static Boolean goBool(String value) {
        switch (value) {
            case "1", "t", "T", "true", "TRUE", "True":
                return true;
            case "0", "f", "F", "false", "FALSE", "False":
                return false;
            default:
                return null;
        }
    }

    private static int parseProbePort(String text) {
        String t = text.trim();
        if (t.isEmpty() || t.length() > 5 || !t.chars().allMatch(Character::isDigit)
                || Integer.parseInt(t) < 1 || Integer.parseInt(t) > 65535) {
            throw new IllegalArgumentException("iptables-probe-port: " + text + " (expected: 1..65535)");
        }
        return Integer.parseInt(t);
    }

    private static final Pattern DURATION_PART =
            Pattern.compile("(\\d+\\.?\\d*|\\.\\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)");

    /**
     * A duration as Go's {@code time.ParseDuration} reads it (istio-iptables' flags, Istio's agent's variables):
     * {@code 5s}, {@code 1500ms}, {@code 1m30s}, {@code .5s}, {@code 100us}, a sign, or {@code 0}. A negative one is
     * zero, as a Go timer takes it.
     */
    static Duration parseDuration(String flag, String text) {
        String t = text.trim();
        boolean negative = t.startsWith("-");
        String body = t.startsWith("-") || t.startsWith("+") ? t.substring(1) : t;
        if (body.equals("0")) {
            return Duration.ZERO;
        }
        Matcher m = DURATION_PART.matcher(body);
        double nanos = 0;
        int end = 0;
        while (m.find() && m.start() == end) {
            double v = Double.parseDouble(m.group(1));
            nanos += v * switch (m.group(2)) {
                case "ns" -> 1;
                case "ms" -> 1e6;
                case "s" -> 1e9;
                case "m" -> 60e9;
                case "h" -> 3600e9;
                default -> 1e3;
            };
            end = m.end();
        }
        if (body.isEmpty() || end != body.length()) {
            throw new IllegalArgumentException(flag + ": " + text + " (expected: a duration like 5s)");
        }
        return negative ? Duration.ZERO : Duration.ofNanos((long) nanos);
    }
}

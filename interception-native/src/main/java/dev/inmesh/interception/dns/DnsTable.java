package dev.inmesh.interception.dns;

import dev.inmesh.api.config.listener.FilterChain;
import dev.inmesh.api.config.listener.HttpConnectionManager;
import dev.inmesh.api.config.listener.Listener;
import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.api.config.route.VirtualHost;
import dev.inmesh.runtime.xds.ResourceBundle;
import io.netty.handler.codec.dns.DnsRecordType;
import io.netty.util.NetUtil;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The names the DNS proxy answers itself, compiled once from a configuration (or from istiod's name table, see
 * {@link #of(NameTable, List, String, String)}), as Istio's agent compiles istiod's name
 * table. Istio writes a service's virtual host with its host names and its cluster IPs as domains
 * ({@code reviews.default.svc.cluster.local}, {@code reviews}, {@code reviews.default}, {@code 10.96.1.2}, each also
 * with {@code :PORT}): each host-name domain of a virtual host (port stripped; not a wildcard) resolves to its
 * IP-literal domains. A virtual host with no IP-literal domain names nothing. With search domains, each name followed
 * by the first one ({@code reviews.default.svc.cluster.local.default.svc.cluster.local}, what a resolver asks first)
 * is an alias (CNAME) of the name, as Istio's agent answers it, unless it is a name of its own. Names are kept in
 * lower case with their final dot.
 */
public final class DnsTable {
    /** The TTL of every answer, Istio's: low, so that clients that keep answers ask again soon. */
    public static final long TTL_SECONDS = 30;

    /** A table that knows no name: every query is forwarded. */
    public static final DnsTable EMPTY = new DnsTable(Map.of(), Map.of());

    private final Map<String, List<InetAddress>> addresses;
    private final Map<String, String> aliases;

    private DnsTable(Map<String, List<InetAddress>> addresses, Map<String, String> aliases) {
        this.addresses = addresses;
        this.aliases = aliases;
    }

    /**
     * What the table answers to a question it knows.
     *
     * @param alias the name asked when it is an alias ({@code CNAME} to {@code name}), or null
     * @param name the name the addresses are of
     * @param addresses the name's addresses of the family asked, maybe none (then the answer has no record)
     */
    public record Answer(String alias, String name, List<InetAddress> addresses) {
        public Answer {
            addresses = List.copyOf(addresses);
        }
    }

    /**
     * The table of the virtual hosts of {@code bundle}: its route configurations and those inline in its listeners'
     * HTTP connection managers, a name in several virtual hosts having all their addresses (in order, once each).
     *
     * @param searchDomains the application's search domains ({@code search} of {@code /etc/resolv.conf}), of which
     *                      the first makes the aliases
     */
    public static DnsTable of(ResourceBundle bundle, List<String> searchDomains) {
        List<RouteConfiguration> routes = new ArrayList<>(bundle.routes().values());
        for (Listener l : bundle.listeners().values()) {
            List<FilterChain> chains = l.allFilterChains();
            for (FilterChain c : chains) {
                if (c.filter() instanceof HttpConnectionManager hcm && hcm.routeConfig() != null) {
                    routes.add(hcm.routeConfig());
                }
            }
        }
        Map<String, Set<InetAddress>> names = new LinkedHashMap<>();
        for (RouteConfiguration rc : routes) {
            for (VirtualHost vh : rc.virtualHosts()) {
                add(vh, names);
            }
        }
        return of(names, searchDomains);
    }

    /**
     * The table of istiod's name table {@code nt}, as Istio's agent builds it: each host name resolves to its
     * addresses (a wildcard one, {@code *.example.com}, to every name below it that has no entry of its own); a
     * Kubernetes service's host in the proxy's cluster domain also by its short forms, {@code name.namespace},
     * {@code name.namespace.svc}, and {@code name} alone when the service is in the proxy's namespace; a host with
     * no address that parses names nothing.
     *
     * @param proxyNamespace the proxy's namespace
     * @param clusterDomain the cluster's DNS domain ({@code cluster.local})
     */
    public static DnsTable of(NameTable nt, List<String> searchDomains, String proxyNamespace,
                              String clusterDomain) {
        String svc = "svc." + clusterDomain.toLowerCase(Locale.ROOT);
        Map<String, Set<InetAddress>> names = new LinkedHashMap<>();
        nt.table().forEach((host, info) -> {
            List<InetAddress> ips = new ArrayList<>();
            for (String ip : info.ips()) {
                InetAddress a = NetUtil.createInetAddressFromIpAddressString(ip);
                if (a != null) {
                    ips.add(a);
                }
            }
            if (ips.isEmpty()) {
                return;
            }
            Set<String> hosts = new LinkedHashSet<>();
            hosts.add(fqdn(host));
            if (info.registry().equals("Kubernetes") && host.toLowerCase(Locale.ROOT).endsWith(svc)) {
                String shortName = info.shortname() + "." + info.namespace();
                hosts.add(fqdn(shortName));
                if (info.namespace().equals(proxyNamespace)) {
                    hosts.add(fqdn(info.shortname()));
                }
                hosts.add(fqdn(shortName + ".svc"));
                info.altHosts().forEach(h -> hosts.add(fqdn(h)));
            }
            for (String h : hosts) {
                names.computeIfAbsent(h, k -> new LinkedHashSet<>()).addAll(ips);
            }
        });
        return of(names, searchDomains);
    }

    private static DnsTable of(Map<String, Set<InetAddress>> names, List<String> searchDomains) {
        Map<String, List<InetAddress>> addresses = new LinkedHashMap<>();
        names.forEach((name, ips) -> addresses.put(name, List.copyOf(ips)));
        Map<String, String> aliases = new LinkedHashMap<>();
        if (!searchDomains.isEmpty()) {
            String suffix = fqdn(searchDomains.get(0));
            for (String name : addresses.keySet()) {
                String expanded = name + suffix;
                if (!addresses.containsKey(expanded)) {
                    aliases.put(expanded, name);
                }
            }
        }
        return new DnsTable(Map.copyOf(addresses), Map.copyOf(aliases));
    }

    private static void add(VirtualHost vh, Map<String, Set<InetAddress>> names) {
        List<InetAddress> ips = new ArrayList<>();
        List<String> hosts = new ArrayList<>();
        for (String domain : vh.domains()) {
            String host = withoutPort(domain);
            InetAddress ip = NetUtil.createInetAddressFromIpAddressString(host);
            if (ip != null) {
                ips.add(ip);
            } else if (!host.contains("*") && !host.isEmpty()) {
                hosts.add(fqdn(host));
            }
        }
        if (ips.isEmpty()) {
            return;
        }
        for (String h : hosts) {
            names.computeIfAbsent(h, k -> new LinkedHashSet<>()).addAll(ips);
        }
    }

    /** A domain without its {@code :PORT}; an IPv6 literal without its brackets. */
    static String withoutPort(String domain) {
        if (domain.startsWith("[")) {
            int end = domain.indexOf(']');
            return end < 0 ? domain : domain.substring(1, end);
        }
        int colon = domain.indexOf(':');
        // two colons or more: an IPv6 literal with no port (Envoy matches it as it is)
        return colon < 0 || domain.indexOf(':', colon + 1) >= 0 ? domain : domain.substring(0, colon);
    }

    /** A name in lower case with its final dot. */
    static String fqdn(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        return n.endsWith(".") ? n : n + ".";
    }

    /**
     * The answer to a question for {@code name} of {@code type}, or null when the table does not answer it (the
     * query is forwarded): a name it does not know, or a type other than A and AAAA, as Istio's agent. A name it knows
     * that has no address of that family is answered with none (NOERROR, no record).
     */
    public Answer lookup(String name, DnsRecordType type) {
        String asked = fqdn(name);
        String known = addresses.containsKey(asked) || aliases.containsKey(asked) ? asked : wildcard(asked);
        if (known == null || !(DnsRecordType.A.equals(type) || DnsRecordType.AAAA.equals(type))) {
            return null;
        }
        String target = addresses.containsKey(known) ? known : aliases.get(known);
        Class<? extends InetAddress> family = DnsRecordType.A.equals(type) ? Inet4Address.class
                : Inet6Address.class;
        List<InetAddress> found = addresses.get(target).stream().filter(family::isInstance).toList();
        // a name, or a wildcard's addresses under the name asked; else an alias (CNAME) of the name, a wildcard's
        // alias too ("a.wild.example.com.ns.svc.cluster.local." to "*.wild.example.com."), as Istio's agent
        return target.equals(known) ? new Answer(null, asked, found) : new Answer(asked, target, found);
    }

    /**
     * The closest wildcard name above {@code asked} the table knows, a name or an alias ({@code *.b.c.} for
     * {@code a.b.c.}), or null.
     */
    private String wildcard(String asked) {
        for (int dot = asked.indexOf('.'); dot >= 0 && dot < asked.length() - 1; dot = asked.indexOf('.', dot + 1)) {
            String w = "*" + asked.substring(dot);
            if (addresses.containsKey(w) || aliases.containsKey(w)) {
                return w;
            }
        }
        return null;
    }

    /** The names the table answers, aliases apart, in lower case with their final dot. */
    public Set<String> names() {
        return addresses.keySet();
    }

    /** How many names the table answers, aliases included. */
    public int size() {
        return addresses.size() + aliases.size();
    }
}

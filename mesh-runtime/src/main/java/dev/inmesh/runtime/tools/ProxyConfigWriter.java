package dev.inmesh.runtime.tools;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Value;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.config.cluster.v3.Cluster;
import io.envoyproxy.envoy.config.core.v3.Address;
import io.envoyproxy.envoy.config.core.v3.HealthStatus;
import io.envoyproxy.envoy.config.core.v3.Metadata;
import io.envoyproxy.envoy.config.endpoint.v3.ClusterLoadAssignment;
import io.envoyproxy.envoy.config.endpoint.v3.LbEndpoint;
import io.envoyproxy.envoy.config.endpoint.v3.LocalityLbEndpoints;
import io.envoyproxy.envoy.config.listener.v3.Filter;
import io.envoyproxy.envoy.config.listener.v3.FilterChain;
import io.envoyproxy.envoy.config.listener.v3.FilterChainMatch;
import io.envoyproxy.envoy.config.listener.v3.Listener;
import io.envoyproxy.envoy.config.route.v3.Route;
import io.envoyproxy.envoy.config.route.v3.RouteConfiguration;
import io.envoyproxy.envoy.config.route.v3.RouteMatch;
import io.envoyproxy.envoy.config.route.v3.VirtualHost;
import io.envoyproxy.envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager;
import io.envoyproxy.envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * The tables of {@code istioctl proxy-config}, computed as istioctl computes them
 * ({@code istioctl/pkg/writer/envoy/configdump}), from the xDS messages of a {@link ResourceBundle} read from a config
 * dump. Filters and selection, sort orders, column headers and Go {@code tabwriter} padding follow istioctl.
 */
final class ProxyConfigWriter {
    static final String HCM = "envoy.filters.network.http_connection_manager";
    static final String TCP_PROXY = "envoy.filters.network.tcp_proxy";
    private static final String HCM_TYPE =
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    private static final String TCP_TYPE = "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";

    private ProxyConfigWriter() {}

    /** What {@code --port}, {@code --address}, {@code --type}, {@code --name}, ... select; null means any. */
    record Filters(Integer port, String address, String type, String name, String fqdn, String direction,
                   String subset, String cluster, String status) {
        static final Filters NONE = new Filters(null, null, null, null, null, null, null, null, null);
    }

    // ---- listeners -------------------------------------------------------------------------------------------

    static List<Listener> listeners(ResourceBundle b, Filters f) {
        List<Listener> out = new ArrayList<>();
        for (String name : b.listeners().keySet()) {
            Message m = b.message(ResourceType.LISTENER, name);
            if (m instanceof Listener l && verify(l, f)) {
                out.add(l);
            }
        }
        return out;
    }

    private static boolean verify(Listener l, Filters f) {
        if (f.address() != null && !f.address().isEmpty()) {
            boolean found = listenerAddresses(l).stream().anyMatch(a -> a.equalsIgnoreCase(f.address()));
            if (!found) {
                return false;
            }
        }
        if (f.port() != null && f.port() != 0 && port(l) != f.port()) {
            return false;
        }
        return f.type() == null || f.type().isEmpty() || listenerType(l).equalsIgnoreCase(f.type());
    }

    /** {@code ADDRESSES PORT MATCH DESTINATION}, one row per filter chain. */
    static String listenerSummary(List<Listener> listeners) {
        List<Listener> sorted = new ArrayList<>(listeners);
        sorted.sort(Comparator.comparingInt(ProxyConfigWriter::port)
                .thenComparing(ProxyConfigWriter::address)
                .thenComparing(ProxyConfigWriter::listenerType));
        TabWriter w = new TabWriter(1).row("ADDRESSES", "PORT", "MATCH", "DESTINATION");
        for (Listener l : sorted) {
            String addresses = String.join(",", listenerAddresses(l));
            List<String[]> matches = new ArrayList<>();
            for (FilterChain fc : chains(l)) {
                matches.add(new String[] {matches(fc.getFilterChainMatch()), filterType(fc.getFiltersList())});
            }
            matches.sort((a, c) -> c[1].compareTo(a[1]));
            for (String[] m : matches) {
                w.row(addresses, Integer.toString(port(l)), m[0], m[1]);
            }
        }
        return w.render();
    }

    private static List<FilterChain> chains(Listener l) {
        List<FilterChain> out = new ArrayList<>(l.getFilterChainsList());
        if (l.hasDefaultFilterChain()) {
            out.add(l.getDefaultFilterChain());
        }
        return out;
    }

    private static int port(Listener l) {
        return l.getAddress().getSocketAddress().getPortValue();
    }

    private static String address(Listener l) {
        Address a = l.getAddress();
        if (a.hasSocketAddress()) {
            return a.getSocketAddress().getAddress();
        }
        return a.hasPipe() ? a.getPipe().getPath() : "";
    }

    private static List<String> listenerAddresses(Listener l) {
        List<String> out = new ArrayList<>();
        out.add(address(l));
        l.getAdditionalAddressesList().forEach(a -> out.add(a.getAddress().getSocketAddress().getAddress()));
        return out;
    }

    /** HTTP, TCP, HTTP+TCP or UNKNOWN; a TCP proxy to the BlackHoleCluster does not count. */
    static String listenerType(Listener l) {
        int http = 0;
        int tcp = 0;
        for (FilterChain fc : chains(l)) {
            for (Filter f : fc.getFiltersList()) {
                if (isHcm(f)) {
                    http++;
                } else if (isTcpProxy(f) && !toBlackHole(f)) {
                    tcp++;
                }
            }
        }
        if (http > 0) {
            return tcp == 0 ? "HTTP" : "HTTP+TCP";
        }
        return tcp > 0 ? "TCP" : "UNKNOWN";
    }

    private static boolean isHcm(Filter f) {
        return f.getName().equals(HCM) || f.getTypedConfig().getTypeUrl().equals(HCM_TYPE);
    }

    private static boolean isTcpProxy(Filter f) {
        return f.getName().equals(TCP_PROXY) || f.getTypedConfig().getTypeUrl().equals(TCP_TYPE);
    }

    private static boolean toBlackHole(Filter f) {
        return f.getTypedConfig().getValue().toString(StandardCharsets.ISO_8859_1).contains("BlackHoleCluster");
    }

    private static final Map<String, List<String>> PROTOCOL_DESCRIPTIONS = new LinkedHashMap<>();

    static {
        PROTOCOL_DESCRIPTIONS.put("App: HTTP TLS",
                List.of("http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"));
        PROTOCOL_DESCRIPTIONS.put("App: Istio HTTP Plain", List.of("istio", "istio-http/1.0", "istio-http/1.1",
                "istio-h2"));
        PROTOCOL_DESCRIPTIONS.put("App: TCP TLS", List.of("istio-peer-exchange", "istio"));
        PROTOCOL_DESCRIPTIONS.put("App: HTTP", List.of("http/1.0", "http/1.1", "h2c"));
    }

    static String matches(FilterChainMatch m) {
        List<String> d = new ArrayList<>();
        if (m.getServerNamesCount() > 0) {
            d.add("SNI: " + String.join(",", m.getServerNamesList()));
        }
        if (!m.getTransportProtocol().isEmpty()) {
            d.add("Trans: " + m.getTransportProtocol());
        }
        if (m.getApplicationProtocolsCount() > 0) {
            String found = null;
            for (var e : PROTOCOL_DESCRIPTIONS.entrySet()) {
                if (e.getValue().equals(m.getApplicationProtocolsList())) {
                    found = e.getKey();
                    break;
                }
            }
            d.add(found != null ? found : "App: " + String.join(",", m.getApplicationProtocolsList()));
        }
        String port = m.hasDestinationPort() ? ":" + m.getDestinationPort().getValue() : "";
        if (m.getPrefixRangesCount() > 0) {
            List<String> pf = new ArrayList<>();
            m.getPrefixRangesList().forEach(p -> pf.add(p.getAddressPrefix() + "/" + p.getPrefixLen().getValue()));
            d.add("Addr: " + String.join(",", pf) + port);
        } else if (!port.isEmpty()) {
            d.add("Addr: *" + port);
        }
        return d.isEmpty() ? "ALL" : String.join("; ", d);
    }

    static String filterType(List<Filter> filters) {
        for (Filter f : filters) {
            if (isHcm(f)) {
                HttpConnectionManager hcm;
                try {
                    hcm = HttpConnectionManager.parseFrom(f.getTypedConfig().getValue());
                } catch (InvalidProtocolBufferException e) {
                    return e.getMessage();
                }
                if (hcm.hasRouteConfig()) {
                    return describeRouteConfig(hcm.getRouteConfig());
                }
                if (!hcm.getRds().getRouteConfigName().isEmpty()) {
                    return "Route: " + hcm.getRds().getRouteConfigName();
                }
                return "HTTP";
            } else if (isTcpProxy(f) && !toBlackHole(f)) {
                TcpProxy tcp;
                try {
                    tcp = TcpProxy.parseFrom(f.getTypedConfig().getValue());
                } catch (InvalidProtocolBufferException e) {
                    return e.getMessage();
                }
                return tcp.getCluster().contains("Cluster") ? tcp.getCluster() : "Cluster: " + tcp.getCluster();
            }
        }
        return "Non-HTTP/Non-TCP";
    }

    private static String describeRouteConfig(RouteConfiguration rc) {
        String all = matchAllCluster(rc);
        if (!all.isEmpty()) {
            return all;
        }
        List<String> vhosts = new ArrayList<>();
        for (VirtualHost vh : rc.getVirtualHostsList()) {
            String domains = describeDomains(vh);
            vhosts.add(domains.isEmpty() ? describeRoutes(vh) : domains + " " + describeRoutes(vh));
        }
        return "Inline Route: " + String.join("; ", vhosts);
    }

    private static String matchAllCluster(RouteConfiguration rc) {
        if (rc.getVirtualHostsCount() != 1) {
            return "";
        }
        VirtualHost vh = rc.getVirtualHosts(0);
        if (!vh.getDomainsList().equals(List.of("*")) || vh.getRoutesCount() != 1) {
            return "";
        }
        Route r = vh.getRoutes(0);
        if (!r.getMatch().getPrefix().equals("/") || !r.hasRoute() || !r.getRoute().hasCluster()) {
            return "";
        }
        String c = r.getRoute().getCluster();
        return c.contains("Cluster") ? c : "Cluster: " + c;
    }

    private static String describeDomains(VirtualHost vh) {
        if (vh.getDomainsCount() == 1 && vh.getDomains(0).equals("*")) {
            return "";
        }
        return String.join("/", vh.getDomainsList());
    }

    private static String describeRoutes(VirtualHost vh) {
        List<String> out = new ArrayList<>();
        vh.getRoutesList().forEach(r -> out.add(describeMatch(r.getMatch())));
        return String.join(", ", out);
    }

    static String describeMatch(RouteMatch m) {
        List<String> c = new ArrayList<>();
        if (!m.getPrefix().isEmpty()) {
            c.add(m.getPrefix() + "*");
        }
        if (!m.getPathSeparatedPrefix().isEmpty()) {
            c.add("PathPrefix:" + m.getPathSeparatedPrefix());
        }
        if (!m.getPath().isEmpty()) {
            c.add(m.getPath());
        }
        if (m.hasSafeRegex()) {
            c.add("regex " + m.getSafeRegex().getRegex());
        }
        return String.join(" ", c);
    }

    // ---- routes ----------------------------------------------------------------------------------------------

    static List<RouteConfiguration> routes(ResourceBundle b, Filters f) {
        List<RouteConfiguration> out = new ArrayList<>();
        for (String name : b.routes().keySet()) {
            Message m = b.message(ResourceType.ROUTE, name);
            if (m instanceof RouteConfiguration r && (f.name() == null || f.name().equals(r.getName()))) {
                out.add(r);
            }
        }
        // istioctl orders numeric names (ports) numerically; others keep their place after them here
        List<RouteConfiguration> numeric = new ArrayList<>();
        List<RouteConfiguration> other = new ArrayList<>();
        for (RouteConfiguration r : out) {
            (r.getName().matches("-?\\d{1,9}") ? numeric : other).add(r);
        }
        numeric.sort(Comparator.comparingInt(r -> Integer.parseInt(r.getName())));
        numeric.addAll(other);
        return numeric;
    }

    /** {@code NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE}, one row per route (passthrough routes left out). */
    static String routeSummary(List<RouteConfiguration> routes) {
        TabWriter w = new TabWriter(5).row("NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE");
        for (RouteConfiguration rc : routes) {
            for (VirtualHost vh : rc.getVirtualHostsList()) {
                for (Route r : vh.getRoutesList()) {
                    if (!isPassthrough(r)) {
                        w.row(rc.getName(), vh.getName(), describeRouteDomains(vh.getDomainsList()),
                                describeMatch(r.getMatch()), describeManagement(r.getMetadata(), r.hasMetadata()));
                    }
                }
                if (vh.getRoutesCount() == 0) {
                    w.row(rc.getName(), vh.getName(), describeRouteDomains(vh.getDomainsList()), "/*", "404");
                }
            }
        }
        return w.render();
    }

    private static boolean isPassthrough(Route r) {
        return r.hasRoute() && r.getRoute().hasCluster() && r.getRoute().getCluster().equals("PassthroughCluster");
    }

    static String describeRouteDomains(List<String> domains) {
        if (domains.isEmpty()) {
            return "";
        }
        if (domains.size() == 1) {
            return domains.get(0);
        }
        List<String> withoutPort = new ArrayList<>();
        for (String d : domains) {
            long colons = d.chars().filter(ch -> ch == ':').count();
            if (colons == 0) {
                withoutPort.add(d);
            } else if (colons > 2 && d.endsWith("]")) {
                withoutPort.add(d);
            }
        }
        withoutPort = unexpandDomains(withoutPort);
        int max = 2;
        if (withoutPort.size() > max) {
            return String.join(", ", withoutPort.subList(0, max)) + " + " + (withoutPort.size() - max) + " more...";
        }
        return String.join(", ", withoutPort);
    }

    private static List<String> unexpandDomains(List<String> domains) {
        Set<String> unique = new HashSet<>(domains);
        Set<String> delete = new HashSet<>();
        for (String h : domains) {
            String full = stripSuffix(h, ".svc.cluster.local");
            if (!full.equals(h) && unique.contains(full)) {
                delete.add(h);
            }
            String partial = stripSuffix(h, ".svc");
            if (!partial.equals(h) && unique.contains(partial)) {
                delete.add(h);
            }
        }
        List<String> out = new ArrayList<>();
        domains.stream().filter(h -> !delete.contains(h)).forEach(out::add);
        return out;
    }

    private static String stripSuffix(String s, String suffix) {
        return s.endsWith(suffix) ? s.substring(0, s.length() - suffix.length()) : s;
    }

    /** The Istio config (VirtualService, DestinationRule) a resource came from, from its {@code istio} metadata. */
    static String describeManagement(Metadata metadata, boolean present) {
        if (!present) {
            return "";
        }
        var istio = metadata.getFilterMetadataMap().get("istio");
        if (istio == null) {
            return "";
        }
        Value config = istio.getFieldsMap().get("config");
        if (config == null) {
            return "";
        }
        String path = config.getStringValue();
        if (path.startsWith("/apis/networking.istio.io/v1alpha3/namespaces/")) {
            String[] pieces = path.split("/", -1);
            return pieces.length != 8 ? "" : pieces[7] + "." + pieces[5];
        }
        return "<unknown>";
    }

    // ---- clusters --------------------------------------------------------------------------------------------

    static List<Cluster> clusters(ResourceBundle b, Filters f) {
        List<Cluster> all = new ArrayList<>();
        for (String name : b.clusters().keySet()) {
            if (b.message(ResourceType.CLUSTER, name) instanceof Cluster c) {
                all.add(c);
            }
        }
        return clusters(all, f);
    }

    /** The clusters {@code f} selects, in istioctl's order: by host, subset, port, direction. */
    static List<Cluster> clusters(List<Cluster> all, Filters f) {
        List<Cluster> out = new ArrayList<>();
        for (Cluster c : all) {
            if (verify(c, f)) {
                out.add(c);
            }
        }
        out.sort(Comparator.comparing((Cluster c) -> subsetKey(c.getName())[2])
                .thenComparing(c -> subsetKey(c.getName())[1])
                .thenComparingInt(c -> portOf(subsetKey(c.getName())[3]))
                .thenComparing(c -> subsetKey(c.getName())[0]));
        return out;
    }

    private static boolean verify(Cluster c, Filters f) {
        String name = c.getName();
        if (f.fqdn() != null && !name.contains(f.fqdn())) {
            return false;
        }
        if (f.direction() != null && !name.contains(f.direction())) {
            return false;
        }
        if (f.subset() != null && !name.contains(f.subset())) {
            return false;
        }
        return f.port() == null || f.port() == 0 || name.contains("|" + f.port() + "|");
    }

    /** direction, subset, fqdn, port of {@code direction|port|subset|fqdn}; the name as fqdn otherwise. */
    private static String[] subsetKey(String name) {
        String[] p = name.split("\\|", -1);
        if (p.length > 3) {
            return new String[] {p[0], p[2], p[3], p[1]};
        }
        return new String[] {"", "", name, "0"};
    }

    private static int portOf(String s) {
        try {
            return Integer.parseInt(s);
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** {@code SERVICE FQDN PORT SUBSET DIRECTION TYPE DESTINATION RULE}. */
    static String clusterSummary(List<Cluster> clusters) {
        TabWriter w = new TabWriter(5).row("SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE");
        for (Cluster c : clusters) {
            String type = c.getType().name();
            String dr = describeManagement(c.getMetadata(), c.hasMetadata());
            if (c.getName().split("\\|", -1).length > 3) {
                String[] k = subsetKey(c.getName());
                w.row(k[2], Integer.toString(portOf(k[3])), k[1].isEmpty() ? "-" : k[1], k[0], type, dr);
            } else {
                w.row(c.getName(), "-", "-", "-", type, dr);
            }
        }
        return w.render();
    }

    // ---- endpoints -------------------------------------------------------------------------------------------

    /** One endpoint of a cluster: what a row of the endpoint table shows. */
    record EndpointRow(String address, int port, String cluster, String status) {
        String endpoint() {
            return port != 0 ? address + ":" + port : address;
        }
    }

    static List<ClusterLoadAssignment> loadAssignments(ResourceBundle b) {
        List<ClusterLoadAssignment> out = new ArrayList<>();
        for (String name : b.endpoints().keySet()) {
            if (b.message(ResourceType.ENDPOINT, name) instanceof ClusterLoadAssignment cla) {
                out.add(cla);
            }
        }
        return out;
    }

    static List<EndpointRow> endpoints(ResourceBundle b, Filters f) {
        return endpoints(loadAssignments(b), f);
    }

    /** The endpoints {@code f} selects, in istioctl's order: by address, port, cluster. */
    static List<EndpointRow> endpoints(List<ClusterLoadAssignment> assignments, Filters f) {
        List<EndpointRow> rows = new ArrayList<>();
        for (ClusterLoadAssignment cla : assignments) {
            for (LocalityLbEndpoints group : cla.getEndpointsList()) {
                for (LbEndpoint e : group.getLbEndpointsList()) {
                    Address a = e.getEndpoint().getAddress();
                    String address = a.hasSocketAddress() ? a.getSocketAddress().getAddress()
                            : "unix://" + a.getPipe().getPath();
                    int port = a.hasSocketAddress() ? a.getSocketAddress().getPortValue() : 0;
                    // Envoy's /clusters reports an endpoint EDS left UNKNOWN as HEALTHY
                    HealthStatus h = e.getHealthStatus() == HealthStatus.UNKNOWN ? HealthStatus.HEALTHY
                            : e.getHealthStatus();
                    EndpointRow row = new EndpointRow(address, port, cla.getClusterName(), h.name());
                    if (verify(row, f)) {
                        rows.add(row);
                    }
                }
            }
        }
        rows.sort(Comparator.comparing(EndpointRow::address).thenComparingInt(EndpointRow::port)
                .thenComparing(EndpointRow::cluster));
        return rows;
    }

    private static boolean verify(EndpointRow r, Filters f) {
        if (f.address() != null && !r.address().equalsIgnoreCase(f.address())) {
            return false;
        }
        if (f.port() != null && f.port() != 0 && r.port() != f.port()) {
            return false;
        }
        if (f.cluster() != null && !r.cluster().equalsIgnoreCase(f.cluster())) {
            return false;
        }
        return f.status() == null || r.status().equalsIgnoreCase(f.status().toUpperCase(Locale.ROOT));
    }

    /** {@code ENDPOINT STATUS OUTLIER CHECK CLUSTER}; a dump carries no outlier state, so every check is OK. */
    static String endpointSummary(List<EndpointRow> rows) {
        TabWriter w = new TabWriter(5).row("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER");
        for (EndpointRow r : rows) {
            w.row(r.endpoint(), r.status(), "OK", r.cluster());
        }
        return w.render();
    }
}

package dev.inmesh.runtime.tools;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import com.google.protobuf.Value;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.EnvoyJson;
import dev.inmesh.runtime.xds.ListenerParser;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.admin.v3.ClusterStatus;
import io.envoyproxy.envoy.admin.v3.HostHealthStatus;
import io.envoyproxy.envoy.admin.v3.HostStatus;
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
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.security.cert.CertificateException;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
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

    /**
     * The listeners {@code f} selects in istioctl's order, which {@code -o json|yaml} keeps: the dynamic (active)
     * ones first, then the static ones, each in the dump's order.
     */
    static List<Listener> listeners(ResourceBundle b, Filters f) {
        List<Listener> dynamic = new ArrayList<>();
        List<Listener> statics = new ArrayList<>();
        for (String name : b.listeners().keySet()) {
            Message m = b.message(ResourceType.LISTENER, name);
            if (m instanceof Listener l && verify(l, f)) {
                (b.isStatic(ResourceType.LISTENER, name) ? statics : dynamic).add(l);
            }
        }
        dynamic.addAll(statics);
        return dynamic;
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
        return listenerSummary(listeners, false, true);
    }

    /**
     * The listener table; {@code named} adds istioctl's {@code NAME} column ({@code listener/NAME}) first. Verbose
     * (istioctl's default) it has a row per filter chain, its MATCH and DESTINATION; not verbose
     * ({@code --verbose=false}) a row per listener, with its TYPE (HTTP, TCP, HTTP+TCP or UNKNOWN) instead.
     */
    static String listenerSummary(List<Listener> listeners, boolean named, boolean verbose) {
        List<Listener> sorted = new ArrayList<>(listeners);
        sorted.sort(Comparator.comparingInt(ProxyConfigWriter::port)
                .thenComparing(ProxyConfigWriter::address)
                .thenComparing(ProxyConfigWriter::listenerType));
        TabWriter w = new TabWriter(1);
        if (!verbose) {
            w.row(named(named, "NAME", "ADDRESSES", "PORT", "TYPE"));
            for (Listener l : sorted) {
                w.row(named(named, "listener/" + l.getName(), String.join(",", listenerAddresses(l)),
                        Integer.toString(port(l)), listenerType(l)));
            }
            return w.render();
        }
        w.row(named(named, "NAME", "ADDRESSES", "PORT", "MATCH", "DESTINATION"));
        for (Listener l : sorted) {
            String addresses = String.join(",", listenerAddresses(l));
            List<String[]> matches = new ArrayList<>();
            for (FilterChain fc : ListenerParser.chainsWithDefault(l)) {
                matches.add(new String[] {matches(fc.getFilterChainMatch()), filterType(fc.getFiltersList())});
            }
            matches.sort((a, c) -> c[1].compareTo(a[1]));
            for (String[] m : matches) {
                w.row(named(named, "listener/" + l.getName(), addresses, Integer.toString(port(l)), m[0], m[1]));
            }
        }
        return w.render();
    }

    /** {@code cells}, after {@code name} when the table is {@code named}. */
    private static String[] named(boolean named, String name, String... cells) {
        if (!named) {
            return cells;
        }
        String[] out = new String[cells.length + 1];
        out[0] = name;
        System.arraycopy(cells, 0, out, 1, cells.length);
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
        for (FilterChain fc : ListenerParser.chainsWithDefault(l)) {
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

    static List<RouteConfiguration> routes(ResourceBundle b, List<RouteConfiguration> statics, Filters f) {
        List<RouteConfiguration> out = new ArrayList<>();
        for (String name : b.routes().keySet()) {
            Message m = b.message(ResourceType.ROUTE, name);
            if (m instanceof RouteConfiguration r && (f.name() == null || f.name().equals(r.getName()))) {
                out.add(r);
            }
        }
        // then, as istioctl, the dump's static ones (the listeners' inline route configurations)
        for (RouteConfiguration r : statics) {
            if (f.name() == null || f.name().equals(r.getName())) {
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

    /**
     * The route configurations of a dump's {@code static_route_configs}, in its order: the connection managers'
     * inline ones, which Envoy dumps there once per connection manager (a name may repeat, or be empty). They are
     * not resources of the configuration ({@link EnvoyConfigReader} leaves them out), but istioctl lists them.
     */
    static List<RouteConfiguration> staticRoutes(JsonNode dump) throws EnvoyConfigReader.ConfigReadException {
        JsonNode list = field(section(dump, "RoutesConfigDump"), "static_route_configs");
        List<RouteConfiguration> out = new ArrayList<>();
        for (int i = 0; list != null && i < list.size(); i++) {
            JsonNode config = field(list.get(i), "route_config");
            if (config == null || !config.isObject()) {
                continue;
            }
            com.fasterxml.jackson.databind.node.ObjectNode body = config.deepCopy();
            body.remove("@type");
            try {
                out.add(EnvoyJson.toMessage(body, RouteConfiguration.class));
            } catch (InvalidProtocolBufferException e) {
                throw new EnvoyConfigReader.ConfigReadException("RoutesConfigDump: static_route_configs[" + i
                        + "]: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** {@code NAME VHOST NAME DOMAINS MATCH VIRTUAL SERVICE}, one row per route (passthrough routes left out). */
    static String routeSummary(List<RouteConfiguration> routes) {
        return routeSummary(routes, false, true);
    }

    /**
     * The route table; {@code named} writes the NAME column as istioctl's {@code route/NAME}. Verbose (istioctl's
     * default) it has a row per route; not verbose ({@code --verbose=false}) a row per route configuration, with
     * the number of its virtual hosts.
     */
    static String routeSummary(List<RouteConfiguration> routes, boolean named, boolean verbose) {
        if (!verbose) {
            TabWriter w = new TabWriter(5).row("NAME", "VIRTUAL HOSTS");
            for (RouteConfiguration rc : routes) {
                w.row(named ? "route/" + rc.getName() : rc.getName(), Integer.toString(rc.getVirtualHostsCount()));
            }
            return w.render();
        }
        TabWriter w = new TabWriter(5).row("NAME", "VHOST NAME", "DOMAINS", "MATCH", "VIRTUAL SERVICE");
        for (RouteConfiguration rc : routes) {
            String name = named ? "route/" + rc.getName() : rc.getName();
            for (VirtualHost vh : rc.getVirtualHostsList()) {
                for (Route r : vh.getRoutesList()) {
                    if (!isPassthrough(r)) {
                        w.row(name, vh.getName(), describeRouteDomains(vh.getDomainsList()),
                                describeMatch(r.getMatch()), describeManagement(r.getMetadata(), r.hasMetadata()));
                    }
                }
                if (vh.getRoutesCount() == 0) {
                    w.row(name, vh.getName(), describeRouteDomains(vh.getDomainsList()), "/*", "404");
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

    /**
     * The Istio config (VirtualService, DestinationRule) a resource came from, from its {@code istio} metadata, as
     * istioctl renders it: {@code NAME.NAMESPACE} for a path of the {@code v1alpha3} API or of {@code v1} (which
     * istiod writes since Istio 1.22), {@code <unknown>} for any other.
     */
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
        if (path.startsWith("/apis/networking.istio.io/v1alpha3/namespaces/")
                || path.startsWith("/apis/networking.istio.io/v1/namespaces/")) {
            String[] pieces = path.split("/", -1);
            return pieces.length != 8 ? "" : pieces[7] + "." + pieces[5];
        }
        return "<unknown>";
    }

    // ---- clusters --------------------------------------------------------------------------------------------

    static List<Cluster> clusters(ResourceBundle b, Filters f) {
        return clusters(b, AgentResources.NONE, f);
    }

    /** The bundle's clusters and the Istio agent's static ones of its dump that {@code f} selects. */
    static List<Cluster> clusters(ResourceBundle b, AgentResources agent, Filters f) {
        List<Cluster> all = new ArrayList<>();
        for (String name : b.clusters().keySet()) {
            if (b.message(ResourceType.CLUSTER, name) instanceof Cluster c) {
                all.add(c);
            }
        }
        all.addAll(agent.clusters());
        return clusters(all, f);
    }

    /**
     * The Istio agent's static clusters of a dump ({@code xds-grpc}, {@code sds-grpc}) and the endpoints Envoy dumps
     * for them: the configuration is read without them (Inmesh has its own xDS and SDS clients), but istioctl shows
     * every static cluster, so they are taken from the dump itself for the tables.
     */
    record AgentResources(List<Cluster> clusters, List<ClusterLoadAssignment> endpoints) {
        static final AgentResources NONE = new AgentResources(List.of(), List.of());
    }

    /**
     * The agent's clusters of the dump's {@code static_clusters} (or, without a clusters dump, of its bootstrap's
     * {@code static_resources}) and their {@code static_endpoint_configs}; one that does not parse is told to
     * {@code leftOut} with why.
     */
    static AgentResources agentResources(JsonNode dump, java.util.function.Consumer<String> leftOut) {
        JsonNode statics = field(section(dump, "ClustersConfigDump"), "static_clusters");
        List<JsonNode> clusters = new ArrayList<>();
        if (statics != null) {
            statics.forEach(e -> clusters.add(field(e, "cluster")));
        } else {
            JsonNode bootstrap = field(section(dump, "BootstrapConfigDump"), "bootstrap");
            JsonNode list = field(field(bootstrap, "static_resources"), "clusters");
            if (list != null) {
                list.forEach(clusters::add);
            }
        }
        List<Cluster> agentClusters = new ArrayList<>();
        for (JsonNode c : clusters) {
            Cluster parsed = agentResource(c, "name", Cluster.class, leftOut);
            if (parsed != null) {
                agentClusters.add(parsed);
            }
        }
        List<ClusterLoadAssignment> endpoints = new ArrayList<>();
        JsonNode eds = field(section(dump, "EndpointsConfigDump"), "static_endpoint_configs");
        for (int i = 0; eds != null && i < eds.size(); i++) {
            ClusterLoadAssignment parsed = agentResource(field(eds.get(i), "endpoint_config"), "cluster_name",
                    ClusterLoadAssignment.class, leftOut);
            if (parsed != null) {
                endpoints.add(parsed);
            }
        }
        return new AgentResources(agentClusters, endpoints);
    }

    /** The resource, when it is one of the agent's clusters (by {@code nameField}) that parses; else null. */
    private static <M extends Message> M agentResource(JsonNode r, String nameField, Class<M> type,
                                                         java.util.function.Consumer<String> leftOut) {
        JsonNode name = field(r, nameField);
        if (r == null || !r.isObject() || name == null || !EnvoyConfigReader.ISTIO_AGENT_CLUSTERS.contains(
                name.asText())) {
            return null;
        }
        com.fasterxml.jackson.databind.node.ObjectNode body = r.deepCopy();
        body.remove("@type");
        try {
            return EnvoyJson.toMessage(body, type);
        } catch (InvalidProtocolBufferException e) {
            leftOut.accept(type.getSimpleName() + " " + name.asText() + ": " + e.getMessage());
            return null;
        }
    }

    /** The clusters {@code f} selects, in istioctl's order: by host, subset, port, direction. */
    static List<Cluster> clusters(List<Cluster> all, Filters f) {
        List<Cluster> out = new ArrayList<>();
        for (Cluster c : all) {
            if (verify(c, f)) {
                out.add(c);
            }
        }
        out.sort(Comparator.comparing(Cluster::getName, BY_SUBSET_KEY));
        return out;
    }

    /** istioctl's order of cluster names: by host, subset, port, direction. */
    private static final Comparator<String> BY_SUBSET_KEY = Comparator.comparing((String n) -> subsetKey(n)[2])
            .thenComparing(n -> subsetKey(n)[1])
            .thenComparingInt(n -> portOf(subsetKey(n)[3]))
            .thenComparing(n -> subsetKey(n)[0]);

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
        return clusterSummary(clusters, false);
    }

    /**
     * The cluster table; {@code named} adds istioctl's {@code NAME} column ({@code cluster/NAME}) first, and then
     * names a cluster that is not {@code direction|port|subset|fqdn} {@code cluster/NAME} in SERVICE FQDN too.
     */
    static String clusterSummary(List<Cluster> clusters, boolean named) {
        TabWriter w = new TabWriter(5);
        w.row(named(named, "NAME", "SERVICE FQDN", "PORT", "SUBSET", "DIRECTION", "TYPE", "DESTINATION RULE"));
        for (Cluster c : clusters) {
            String name = "cluster/" + c.getName();
            String type = c.getType().name();
            String dr = describeManagement(c.getMetadata(), c.hasMetadata());
            if (c.getName().split("\\|", -1).length > 3) {
                String[] k = subsetKey(c.getName());
                w.row(named(named, name, k[2], Integer.toString(portOf(k[3])), k[1].isEmpty() ? "-" : k[1], k[0],
                        type, dr));
            } else {
                w.row(named(named, name, named ? name : c.getName(), "-", "-", "-", type, dr));
            }
        }
        return w.render();
    }

    // ---- endpoints -------------------------------------------------------------------------------------------

    /** One host of a cluster in {@code /clusters}: what a row of the endpoint table shows. */
    record EndpointRow(String address, int port, String cluster, String status, boolean failedOutlierCheck) {
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

    private static EndpointRow row(HostStatus h, String cluster) {
        Address a = h.getAddress();
        String address = a.hasSocketAddress() ? a.getSocketAddress().getAddress() : "unix://" + a.getPipe().getPath();
        int port = a.hasSocketAddress() ? a.getSocketAddress().getPortValue() : 0;
        HostHealthStatus health = h.getHealthStatus();
        return new EndpointRow(address, port, cluster, health.getEdsHealthStatus().name(),
                health.getFailedOutlierCheck());
    }

    /** The hosts {@code f} selects, in istioctl's order: by address, port, cluster. */
    static List<EndpointRow> endpoints(List<ClusterStatus> statuses, Filters f) {
        List<EndpointRow> rows = new ArrayList<>();
        for (ClusterStatus c : statuses) {
            for (HostStatus h : c.getHostStatusesList()) {
                EndpointRow row = row(h, c.getName());
                if (verify(row, f)) {
                    rows.add(row);
                }
            }
        }
        rows.sort(Comparator.comparing(EndpointRow::address).thenComparingInt(EndpointRow::port)
                .thenComparing(EndpointRow::cluster));
        return rows;
    }

    /** The clusters, whole and in their order, with at least one host {@code f} selects ({@code -o json}). */
    static List<ClusterStatus> endpointClusters(List<ClusterStatus> statuses, Filters f) {
        List<ClusterStatus> out = new ArrayList<>();
        for (ClusterStatus c : statuses) {
            if (c.getHostStatusesList().stream().anyMatch(h -> verify(row(h, c.getName()), f))) {
                out.add(c);
            }
        }
        return out;
    }

    private static boolean verify(EndpointRow r, Filters f) {
        if (f.address() != null && !f.address().isEmpty() && !r.address().equalsIgnoreCase(f.address())) {
            return false;
        }
        if (f.port() != null && f.port() != 0 && r.port() != f.port()) {
            return false;
        }
        if (f.cluster() != null && !f.cluster().isEmpty() && !r.cluster().equalsIgnoreCase(f.cluster())) {
            return false;
        }
        return f.status() == null || f.status().isEmpty() || r.status().equalsIgnoreCase(f.status());
    }

    /** {@code ENDPOINT STATUS OUTLIER CHECK CLUSTER}; the check is FAILED for a host ejected by outlier detection. */
    static String endpointSummary(List<EndpointRow> rows) {
        TabWriter w = new TabWriter(5).row("ENDPOINT", "STATUS", "OUTLIER CHECK", "CLUSTER");
        for (EndpointRow r : rows) {
            w.row(r.endpoint(), r.status(), r.failedOutlierCheck() ? "FAILED" : "OK", r.cluster());
        }
        return w.render();
    }

    // ---- secrets ---------------------------------------------------------------------------------------------

    /**
     * A row of istioctl's secret table: the secret's first certificate (its chain's, else its CA's) described, or
     * only its name and status, not valid, when it has none that parses.
     */
    record SecretRow(String name, String type, String status, boolean valid, String serialNumber, String notAfter,
                     String notBefore) {}

    /** The {@code SecretsConfigDump} of a config dump, or null when it has none. */
    static JsonNode secretsDump(JsonNode dump) {
        return section(dump, "SecretsConfigDump");
    }

    /** The config of a config dump whose type is {@code envoy.admin.v3.TYPE}, or null when it has none. */
    static JsonNode section(JsonNode dump, String type) {
        JsonNode configs = field(dump, "configs");
        for (int i = 0; configs != null && i < configs.size(); i++) {
            if (configs.get(i).path("@type").asText().endsWith("." + type)) {
                return configs.get(i);
            }
        }
        return null;
    }

    /** As istioctl lists them: the warming secrets, then the active ones, each in the dump's order. */
    static List<SecretRow> secrets(JsonNode secretsDump, Instant now) {
        List<SecretRow> rows = new ArrayList<>();
        String[][] lists = {{"dynamic_warming_secrets", "WARMING"}, {"dynamic_active_secrets", "ACTIVE"}};
        for (String[] list : lists) {
            JsonNode entries = field(secretsDump, list[0]);
            for (int i = 0; entries != null && i < entries.size(); i++) {
                JsonNode e = entries.get(i);
                rows.add(secretRow(field(e, "name") == null ? "" : field(e, "name").asText(), list[1],
                        field(e, "secret"), now));
            }
        }
        return rows;
    }

    private static SecretRow secretRow(String name, String status, JsonNode secret, Instant now) {
        byte[] pem = inlineBytes(secret, "tls_certificate", "certificate_chain");
        if (pem.length == 0) {
            pem = inlineBytes(secret, "validation_context", "trusted_ca");
        }
        X509Certificate cert;
        try {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509")
                    .generateCertificate(new ByteArrayInputStream(pem));
        } catch (CertificateException | RuntimeException e) {
            return new SecretRow(name, "", status, false, "", "", "");
        }
        Instant notBefore = cert.getNotBefore().toInstant();
        Instant notAfter = cert.getNotAfter().toInstant();
        return new SecretRow(name, cert.getBasicConstraints() >= 0 ? "CA" : "Cert Chain", status,
                now.isAfter(notBefore) && now.isBefore(notAfter), cert.getSerialNumber().toString(16),
                RFC_3339.format(notAfter), RFC_3339.format(notBefore));
    }

    private static final DateTimeFormatter RFC_3339 = DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss'Z'")
            .withZone(ZoneOffset.UTC);

    /** The bytes of {@code secret.OUTER.INNER.inline_bytes}, none when it has none. */
    private static byte[] inlineBytes(JsonNode secret, String outer, String inner) {
        JsonNode bytes = field(field(field(secret, outer), inner), "inline_bytes");
        try {
            return bytes == null ? new byte[0] : Base64.getDecoder().decode(bytes.asText());
        } catch (IllegalArgumentException e) {
            return new byte[0];
        }
    }

    /**
     * {@code RESOURCE NAME TYPE STATUS VALID CERT SERIAL NUMBER NOT AFTER NOT BEFORE}, the serial number in hex and
     * the times in RFC 3339; istioctl's sentence when there is no secret.
     */
    static String secretSummary(List<SecretRow> rows) {
        return secretSummary(rows, false);
    }

    /** The secret table; {@code named} writes each RESOURCE NAME as istioctl's {@code all}: {@code secret/NAME}. */
    static String secretSummary(List<SecretRow> rows, boolean named) {
        if (rows.isEmpty()) {
            return "No active or warming secrets found.\n";
        }
        TabWriter w = new TabWriter(5).row("RESOURCE NAME", "TYPE", "STATUS", "VALID CERT", "SERIAL NUMBER",
                "NOT AFTER", "NOT BEFORE");
        for (SecretRow r : rows) {
            w.row(named ? "secret/" + r.name() : r.name(), r.type(), r.status(), Boolean.toString(r.valid()),
                    r.serialNumber(), r.notAfter(), r.notBefore());
        }
        return w.render();
    }

    // ---- the full summary of proxy-config all ----------------------------------------------------------------

    /** The endpoints of a config dump's EDS section that {@code f} selects, by cluster in istioctl's order. */
    static List<ClusterLoadAssignment> edsEndpoints(List<ClusterLoadAssignment> assignments, Filters f) {
        List<ClusterLoadAssignment> out = new ArrayList<>();
        for (ClusterLoadAssignment cla : assignments) {
            ClusterLoadAssignment.Builder b = cla.toBuilder().clearEndpoints();
            int kept = 0;
            for (LocalityLbEndpoints group : cla.getEndpointsList()) {
                LocalityLbEndpoints.Builder g = group.toBuilder().clearLbEndpoints();
                for (LbEndpoint e : group.getLbEndpointsList()) {
                    if (verifyEds(e, cla.getClusterName(), f)) {
                        g.addLbEndpoints(e);
                        kept++;
                    }
                }
                b.addEndpoints(g);
            }
            if (kept > 0) {
                out.add(b.build());
            }
        }
        out.sort(Comparator.comparing(ClusterLoadAssignment::getClusterName, BY_SUBSET_KEY));
        return out;
    }

    /** As istioctl's EDS filter: the address matches one of {@code ADDRESS:PORT}, the status is EDS's own. */
    private static boolean verifyEds(LbEndpoint e, String cluster, Filters f) {
        if (f.address() != null && !f.address().isEmpty()
                && edsAddresses(e).stream().noneMatch(a -> a.equalsIgnoreCase(f.address()))) {
            return false;
        }
        if (f.port() != null && f.port() != 0
                && e.getEndpoint().getAddress().getSocketAddress().getPortValue() != f.port()) {
            return false;
        }
        if (f.cluster() != null && !f.cluster().isEmpty() && !cluster.equalsIgnoreCase(f.cluster())) {
            return false;
        }
        return f.status() == null || f.status().isEmpty() || e.getHealthStatus().name().equalsIgnoreCase(f.status());
    }

    private static List<String> edsAddresses(LbEndpoint e) {
        List<Address> all = new ArrayList<>();
        all.add(e.getEndpoint().getAddress());
        e.getEndpoint().getAdditionalAddressesList().forEach(a -> all.add(a.getAddress()));
        List<String> out = new ArrayList<>();
        for (Address a : all) {
            if (a.hasSocketAddress()) {
                out.add(a.getSocketAddress().getAddress() + ":" + a.getSocketAddress().getPortValue());
            } else if (a.hasPipe()) {
                out.add(a.getPipe().getPath());
            } else if (a.hasEnvoyInternalAddress() && a.getEnvoyInternalAddress().hasServerListenerName()) {
                out.add("envoy://" + a.getEnvoyInternalAddress().getServerListenerName() + "/"
                        + a.getEnvoyInternalAddress().getEndpointId());
            } else {
                out.add("unknown");
            }
        }
        return out;
    }

    /** {@code NAME STATUS LOCALITY CLUSTER}: the endpoints section of the full summary, from EDS. */
    static String edsSummary(List<ClusterLoadAssignment> assignments) {
        TabWriter w = new TabWriter(5).row("NAME", "STATUS", "LOCALITY", "CLUSTER");
        for (ClusterLoadAssignment cla : assignments) {
            for (LocalityLbEndpoints group : cla.getEndpointsList()) {
                String locality = locality(group);
                for (LbEndpoint e : group.getLbEndpointsList()) {
                    w.row("endpoint/" + String.join(",", edsAddresses(e)), e.getHealthStatus().name(), locality,
                            cla.getClusterName());
                }
            }
        }
        return w.render();
    }

    /** {@code region[/zone[/sub_zone]]}, empty without a locality. */
    private static String locality(LocalityLbEndpoints group) {
        if (!group.hasLocality()) {
            return "";
        }
        var l = group.getLocality();
        if (l.getZone().isEmpty()) {
            return l.getRegion();
        }
        return l.getSubZone().isEmpty() ? l.getRegion() + "/" + l.getZone()
                : l.getRegion() + "/" + l.getZone() + "/" + l.getSubZone();
    }

    /**
     * The bootstrap section: the Istio version and proxy SHA from the node metadata ({@code ISTIO_VERSION},
     * {@code ISTIO_PROXY_SHA} after its {@code :}), when there, and the Envoy version from the node's
     * {@code user_agent_build_version} ({@code 0.0.0} without one), with its label, status, type and TLS library.
     */
    static String bootstrapSummary(JsonNode dump) {
        JsonNode bootstrap = section(dump, "BootstrapConfigDump");
        JsonNode node = bootstrap == null ? null : field(field(bootstrap, "bootstrap"), "node");
        JsonNode metadata = node == null ? null : field(node, "metadata");
        String istioVersion = metadata == null ? "" : metadata.path("ISTIO_VERSION").asText("");
        String sha = metadata == null ? "" : metadata.path("ISTIO_PROXY_SHA").asText("");
        String[] shaParts = sha.split(":", -1);
        if (shaParts.length > 1) {
            sha = shaParts[1];
        }
        JsonNode build = node == null ? null : field(node, "user_agent_build_version");
        JsonNode version = build == null ? null : field(build, "version");
        StringBuilder envoy = new StringBuilder();
        envoy.append(number(version, "major_number")).append('.').append(number(version, "minor_number"))
                .append('.').append(number(version, "patch"));
        JsonNode md = build == null ? null : field(build, "metadata");
        String[][] parts = {{"build.label", "-"}, {"revision.status", "/"}, {"build.type", "/"}, {"ssl.version", "/"}};
        for (String[] p : parts) {
            if (md != null && md.has(p[0])) {
                envoy.append(p[1]).append(md.get(p[0]).asText());
            }
        }
        TabWriter w = new TabWriter(1);
        if (!istioVersion.isEmpty()) {
            w.row("Istio Version:", istioVersion);
        }
        if (!sha.isEmpty()) {
            w.row("Istio Proxy Version:", sha);
        }
        w.row("Envoy Version:", envoy.toString());
        return w.render();
    }

    /** A JSON field by its proto name, in either {@code snake_case} or {@code lowerCamelCase}. */
    private static JsonNode field(JsonNode node, String snake) {
        if (node == null) {
            return null;
        }
        JsonNode v = node.get(snake);
        return v != null ? v : node.get(EnvoyConfigReader.camel(snake));
    }

    private static long number(JsonNode version, String field) {
        JsonNode n = version == null ? null : field(version, field);
        return n == null ? 0 : n.asLong();
    }

    /**
     * {@code istioctl proxy-config all}'s summary: bootstrap, cluster, listener, route, secret and endpoints
     * sections, an empty line between two (no header: the tables' NAME columns tell them apart), the tables with
     * their NAME column (the secret table as {@code proxy-config secret} prints it, its names {@code secret/NAME});
     * {@code verbose} as for {@code listener} and {@code route}.
     */
    static String fullSummary(JsonNode dump, ResourceBundle b, List<RouteConfiguration> staticRoutes, Filters f,
                              boolean verbose) {
        return fullSummary(dump, b, AgentResources.NONE, staticRoutes, f, verbose);
    }

    /** The full summary, with the Istio agent's clusters and their endpoints among the others. */
    static String fullSummary(JsonNode dump, ResourceBundle b, AgentResources agent,
                              List<RouteConfiguration> staticRoutes, Filters f, boolean verbose) {
        JsonNode secrets = secretsDump(dump);
        List<ClusterLoadAssignment> assignments = new ArrayList<>(loadAssignments(b));
        assignments.addAll(agent.endpoints());
        // as istioctl's PrintFullSummary: the sections one after the other, an empty line between two
        return String.join("\n", bootstrapSummary(dump),
                clusterSummary(clusters(b, agent, f), true),
                listenerSummary(listeners(b, f), true, verbose),
                routeSummary(routes(b, staticRoutes, f), true, verbose),
                secretSummary(secrets == null ? List.of() : secrets(secrets, Instant.now()), true),
                edsSummary(edsEndpoints(assignments, f)));
    }
}

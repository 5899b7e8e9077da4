package dev.inmesh.runtime.router;

import dev.inmesh.api.config.route.RouteConfiguration;
import dev.inmesh.runtime.xds.EnvoyConfigReader;
import dev.inmesh.runtime.xds.ResourceBundle;

/** Test helpers: route tables from YAML, and requests. */
final class Routes {
    private Routes() {}

    static RouteTable table(String yaml) {
        try {
            ResourceBundle b = EnvoyConfigReader.read(yaml);
            RouteConfiguration rc = b.routes().values().iterator().next();
            return RouteTable.compile(rc);
        } catch (EnvoyConfigReader.ConfigReadException e) {
            throw new AssertionError(e.getMessage(), e);
        }
    }

    static Req req(String authority, String path) {
        return new Req(authority, path);
    }

    /** A request whose headers are set with {@link #with}. */
    static final class Req implements RouteRequest {
        final SimpleHeaders headers = new SimpleHeaders();
        final String authority;
        final String path;
        String method = "GET";
        java.util.Map<String, Object> jwtMetadata = java.util.Map.of();

        Req(String authority, String path) {
            this.authority = authority;
            this.path = path;
        }

        Req with(String name, String value) {
            headers.add(name, value);
            return this;
        }

        /** The JWT filter's metadata the request has when its route is chosen. */
        Req withJwtMetadata(java.util.Map<String, Object> metadata) {
            this.jwtMetadata = metadata;
            return this;
        }

        @Override
        public java.util.Map<String, Object> jwtMetadata() {
            return jwtMetadata;
        }

        @Override
        public String authority() {
            return authority;
        }

        @Override
        public String path() {
            return path;
        }

        @Override
        public String method() {
            return method;
        }

        @Override
        public String scheme() {
            return "http";
        }

        @Override
        public String header(String lowerCaseName) {
            return headers.joined(lowerCaseName);
        }

        @Override
        public String firstHeader(String lowerCaseName) {
            return headers.first(lowerCaseName);
        }
    }

    /** The cluster a request goes to, "" for no route / non-forwarding. */
    static String cluster(RouteTable t, RouteRequest r, long random) {
        RouteResult res = t.route(r, random);
        return res instanceof RouteResult.Forward f ? f.cluster() : "";
    }

    static String cluster(RouteTable t, RouteRequest r) {
        return cluster(t, r, 0);
    }

    static String vhost(RouteTable t, String authority) {
        var vh = t.virtualHost(authority);
        return vh == null ? null : vh.name();
    }
}

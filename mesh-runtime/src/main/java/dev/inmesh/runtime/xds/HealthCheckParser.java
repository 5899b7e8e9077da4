package dev.inmesh.runtime.xds;

import dev.inmesh.api.config.cluster.HealthCheck;
import java.util.List;
import java.util.Set;

/**
 * Parses a cluster's {@code health_checks}: at most one, with Envoy's HTTP checker ({@code http_health_check}: host,
 * path, method, request headers, expected and retriable statuses, HTTP/1.1 or HTTP/2, the body blocks to find in the
 * answer, {@code receive}) or its TCP checker ({@code tcp_health_check}: the bytes to {@code send} and the blocks to
 * {@code receive}; with none to receive, a connection accepted is a success), or
 * its gRPC checker ({@code grpc_health_check}: service name, authority, initial metadata; the cluster must have
 * HTTP/2 to its hosts, as Envoy requires).
 * {@code always_log_health_check_failures} and {@code always_log_health_check_success} only choose what Envoy's
 * health check event logger writes; without one (its {@code event_log_path}, {@code event_logger} and
 * {@code event_service} are refused) they change nothing and are accepted. The custom checkers, an HTTP check's
 * {@code send},
 * {@code tls_options}, {@code transport_socket_match_criteria} and anything else not implemented are refused with
 * their path.
 */
final class HealthCheckParser {
    private static final Set<String> SUPPORTED = Set.of("timeout", "interval", "interval_jitter",
            "interval_jitter_percent", "initial_jitter", "unhealthy_threshold", "healthy_threshold",
            "no_traffic_interval", "no_traffic_healthy_interval", "unhealthy_interval", "unhealthy_edge_interval",
            "healthy_edge_interval", "reuse_connection", "http_health_check", "tcp_health_check", "grpc_health_check");
    private static final Set<String> HARMLESS = Set.of("always_log_health_check_failures",
            "always_log_health_check_success");

    private HealthCheckParser() {}

    /**
     * The cluster's one health check, or null when it has none.
     *
     * @param http2 whether the cluster has Envoy's HTTP2 feature (HTTP/2 protocol options, explicit or for its
     *     downstream protocol), without which Envoy refuses a gRPC check
     */
    static HealthCheck parse(List<io.envoyproxy.envoy.config.core.v3.HealthCheck> checks, boolean http2) {
        if (checks.isEmpty()) {
            return null;
        }
        if (checks.size() > 1) {
            throw new FieldError("health_checks", checks.size() + " health checks (expected: at most one)");
        }
        return Fields.at("health_checks[0]", () -> healthCheck(checks.get(0), http2));
    }

    private static HealthCheck healthCheck(io.envoyproxy.envoy.config.core.v3.HealthCheck h, boolean http2) {
        Fields.onlyKnown(h, SUPPORTED, HARMLESS);
        if (!h.hasTimeout()) {
            throw new FieldError("timeout", "required");
        }
        if (!h.hasInterval()) {
            throw new FieldError("interval", "required");
        }
        if (!h.hasUnhealthyThreshold()) {
            throw new FieldError("unhealthy_threshold", "required");
        }
        if (!h.hasHealthyThreshold()) {
            throw new FieldError("healthy_threshold", "required");
        }
        HealthCheck.Checker checker = switch (h.getHealthCheckerCase()) {
            case HTTP_HEALTH_CHECK -> Fields.at("http_health_check", () -> http(h.getHttpHealthCheck()));
            case TCP_HEALTH_CHECK -> Fields.at("tcp_health_check", () -> {
                var t = h.getTcpHealthCheck();
                Fields.onlyKnown(t, Set.of("send", "receive"), Set.of());
                // as Envoy's TCP checker, which writes its send only when it is text (a binary one writes nothing)
                HealthCheck.Payload send = t.hasSend() ? Fields.at("send", () -> payload(t.getSend())) : null;
                return new HealthCheck.Tcp(t.getSend().getText().isEmpty() ? null : send,
                        Fields.each("receive", t.getReceiveList(), HealthCheckParser::payload));
            });
            case GRPC_HEALTH_CHECK -> {
                if (!http2) {
                    throw new FieldError("grpc_health_check", "on a cluster without HTTP/2 (expected: http2_protocol_"
                            + "options, explicit or in use_downstream_protocol_config, as Envoy requires)");
                }
                yield Fields.at("grpc_health_check", () -> grpc(h.getGrpcHealthCheck()));
            }
            default -> throw new FieldError("health_checker",
                    "required (http_health_check, tcp_health_check or grpc_health_check)");
        };
        return new HealthCheck(Fields.duration(h.getTimeout()), Fields.duration(h.getInterval()),
                Fields.durationOrNull(h.hasIntervalJitter(), h.getIntervalJitter()),
                CoreParsers.int31(com.google.protobuf.UInt32Value.of(h.getIntervalJitterPercent()),
                        "interval_jitter_percent"),
                Fields.durationOrNull(h.hasInitialJitter(), h.getInitialJitter()),
                CoreParsers.int31(h.getUnhealthyThreshold(), "unhealthy_threshold"),
                CoreParsers.int31(h.getHealthyThreshold(), "healthy_threshold"),
                Fields.durationOrNull(h.hasNoTrafficInterval(), h.getNoTrafficInterval()),
                Fields.durationOrNull(h.hasNoTrafficHealthyInterval(), h.getNoTrafficHealthyInterval()),
                Fields.durationOrNull(h.hasUnhealthyInterval(), h.getUnhealthyInterval()),
                Fields.durationOrNull(h.hasUnhealthyEdgeInterval(), h.getUnhealthyEdgeInterval()),
                Fields.durationOrNull(h.hasHealthyEdgeInterval(), h.getHealthyEdgeInterval()),
                !h.hasReuseConnection() || h.getReuseConnection().getValue(), checker);
    }

    private static HealthCheck.Http http(io.envoyproxy.envoy.config.core.v3.HealthCheck.HttpHealthCheck c) {
        Fields.onlyKnown(c, Set.of("host", "path", "method", "request_headers_to_add", "request_headers_to_remove",
                "expected_statuses", "retriable_statuses", "codec_client_type", "receive", "response_buffer_size"),
                Set.of());
        if (c.getPath().isEmpty()) {
            throw new FieldError("path", "required");
        }
        String method = switch (c.getMethod()) {
            case METHOD_UNSPECIFIED, GET -> "GET";
            case HEAD, POST, PUT, DELETE, OPTIONS, TRACE, PATCH -> c.getMethod().name();
            // Envoy's validation refuses CONNECT for a check
            default -> throw new FieldError("method", c.getMethod() + " (expected: a method other than CONNECT)");
        };
        boolean http2 = switch (c.getCodecClientType()) {
            case HTTP1 -> false;
            case HTTP2 -> true;
            default -> throw new FieldError("codec_client_type", c.getCodecClientType()
                    + " (expected: HTTP1 or HTTP2)");
        };
        return Fields.record("", () -> new HealthCheck.Http(c.getHost(), c.getPath(), method,
                Fields.each("request_headers_to_add", c.getRequestHeadersToAddList(),
                        CoreParsers::headerValueOption),
                List.copyOf(c.getRequestHeadersToRemoveList()),
                Fields.each("expected_statuses", c.getExpectedStatusesList(), HealthCheckParser::range),
                Fields.each("retriable_statuses", c.getRetriableStatusesList(), HealthCheckParser::range), http2,
                Fields.each("receive", c.getReceiveList(), HealthCheckParser::payload),
                c.hasResponseBufferSize() ? c.getResponseBufferSize().getValue()
                        : HealthCheck.Http.DEFAULT_RESPONSE_BUFFER_SIZE));
    }

    /** A {@code Payload}: hex {@code text} or {@code binary} bytes, one of them and not empty, as Envoy requires. */
    private static HealthCheck.Payload payload(io.envoyproxy.envoy.config.core.v3.HealthCheck.Payload p) {
        return switch (p.getPayloadCase()) {
            case TEXT -> {
                String hex = p.getText();
                if (hex.isEmpty() || !HealthCheck.Payload.isHex(hex)) {
                    throw new FieldError("text", "\"" + hex + "\" (expected: a hex string of whole bytes, as Envoy "
                            + "decodes it)");
                }
                yield new HealthCheck.Payload(hex);
            }
            case BINARY -> HealthCheck.Payload.of(p.getBinary().toByteArray()); // empty: found anywhere, as Envoy
            default -> throw new FieldError("payload", "required (text or binary)");
        };
    }

    private static HealthCheck.Grpc grpc(io.envoyproxy.envoy.config.core.v3.HealthCheck.GrpcHealthCheck c) {
        Fields.onlyKnown(c, Set.of("service_name", "authority", "initial_metadata"), Set.of());
        return new HealthCheck.Grpc(c.getServiceName(), c.getAuthority(),
                Fields.each("initial_metadata", c.getInitialMetadataList(), CoreParsers::headerValueOption));
    }

    private static HealthCheck.StatusRange range(io.envoyproxy.envoy.type.v3.Int64Range r) {
        if (r.getStart() < 100 || r.getEnd() > 600 || r.getStart() >= r.getEnd()) {
            // named by the bound at fault, as Envoy's validateRange says which one it found wrong
            throw new FieldError(r.getStart() < 100 ? "start" : "end", "[" + r.getStart() + ", " + r.getEnd()
                    + ") (expected: 100 <= start < end <= 600, as Envoy requires)");
        }
        return new HealthCheck.StatusRange((int) r.getStart(), (int) r.getEnd());
    }
}

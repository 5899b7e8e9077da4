package dev.inmesh.api.config.route;

import dev.inmesh.api.config.Checks;
import java.util.List;

/**
 * One entry of a virtual host's or route's {@code rate_limits} ({@code route.v3.RateLimit}): the actions whose
 * entries make one descriptor that Envoy's global rate limit filter ({@code envoy.filters.http.ratelimit}) of the same
 * {@code stage} sends to the rate limit service. When any action cannot produce its entry (a header the request does
 * not have, a header match that does not hold, an address that is not IP), the whole descriptor is left out, as
 * Envoy leaves it out; a {@code request_headers} action with {@code skip_if_absent} adds nothing instead (a descriptor
 * left with no entry is still sent, as Envoy sends it).
 *
 * @param stage the filter stage this entry is for ({@code stage}, 0 to 10; Envoy's default 0)
 * @param disableKey {@code disable_key}: the runtime key that could turn the entry off; kept, and never off (the
 *     runtime, which feeds routes only, is not read for it, and the key's default is on)
 * @param actions the actions, in order: each adds one entry to the descriptor
 */
public record RateLimit(int stage, String disableKey, List<Action> actions) {
    public RateLimit {
        Checks.range(stage, 0, 10, "stage");
        disableKey = disableKey == null ? "" : disableKey;
        actions = Checks.list(actions, "actions");
        Checks.check(!actions.isEmpty(), "actions", "[]", "at least one action, as Envoy requires");
    }

    /**
     * Whether the global rate limit filter sends a route's virtual host's entries ({@code RateLimitPerRoute}'s
     * {@code vh_rate_limits}, in a route's or virtual host's {@code typed_per_filter_config} for the filter).
     */
    public enum VhRateLimits {
        /** Only where the route has no {@code rate_limits} of its own (Envoy's default). */
        OVERRIDE,
        /** Besides the route's own. */
        INCLUDE,
        /** Never. */
        IGNORE
    }

    /** One action of a rate limit entry: what it adds to the descriptor. */
    public sealed interface Action permits DestinationCluster, RequestHeaders, RemoteAddress, MaskedRemoteAddress,
            GenericKey, HeaderValueMatch, QueryParameterValueMatch {}

    /** {@code destination_cluster}: entry {@code ("destination_cluster", <the route's cluster>)}. */
    public record DestinationCluster() implements Action {}

    /**
     * {@code request_headers}: entry {@code (descriptorKey, <the header's first value>)}; a request without the header
     * drops the descriptor, or with {@code skipIfAbsent} adds no entry.
     */
    public record RequestHeaders(String headerName, String descriptorKey, boolean skipIfAbsent) implements Action {
        public RequestHeaders {
            Checks.nonEmpty(headerName, "request_headers.header_name");
            Checks.nonEmpty(descriptorKey, "request_headers.descriptor_key");
        }
    }

    /**
     * {@code remote_address}: entry {@code ("remote_address", <the trusted downstream address>)}, as Envoy's connection
     * manager sets it with {@code use_remote_address: false} and no trusted hops: the last {@code x-forwarded-for}
     * address when it is one, else the peer's IP.
     */
    public record RemoteAddress() implements Action {}

    /**
     * {@code masked_remote_address}: entry {@code ("masked_remote_address", <network>/<length>)}, the trusted
     * downstream address (as {@link RemoteAddress}'s) with the bits past its prefix cleared, so that one descriptor
     * counts a whole subnet; an address that is not IP drops the descriptor.
     *
     * @param v4PrefixMaskLen the prefix kept of an IPv4 address ({@code v4_prefix_mask_len}, 0 to 32; Envoy's default
     *     32, the whole address)
     * @param v6PrefixMaskLen the prefix kept of an IPv6 address ({@code v6_prefix_mask_len}, 0 to 128; default 128)
     */
    public record MaskedRemoteAddress(int v4PrefixMaskLen, int v6PrefixMaskLen) implements Action {
        public MaskedRemoteAddress {
            Checks.range(v4PrefixMaskLen, 0, 32, "masked_remote_address.v4_prefix_mask_len");
            Checks.range(v6PrefixMaskLen, 0, 128, "masked_remote_address.v6_prefix_mask_len");
        }
    }

    /** {@code generic_key}: entry {@code (descriptorKey, descriptorValue)}, {@code generic_key} the default key. */
    public record GenericKey(String descriptorValue, String descriptorKey) implements Action {
        /** Envoy's key when {@code descriptor_key} is empty. */
        public static final String DEFAULT_KEY = "generic_key";

        public GenericKey {
            Checks.nonEmpty(descriptorValue, "generic_key.descriptor_value");
            descriptorKey = descriptorKey == null || descriptorKey.isEmpty() ? DEFAULT_KEY : descriptorKey;
        }
    }

    /**
     * {@code header_value_match}: entry {@code (descriptorKey, descriptorValue)} when the headers match (all of them)
     * as {@code expectMatch} says, else the descriptor is dropped; {@code header_match} the default key.
     */
    public record HeaderValueMatch(String descriptorKey, String descriptorValue, boolean expectMatch,
                                   List<HeaderMatcher> headers) implements Action {
        /** Envoy's key when {@code descriptor_key} is empty. */
        public static final String DEFAULT_KEY = "header_match";

        public HeaderValueMatch {
            descriptorKey = descriptorKey == null || descriptorKey.isEmpty() ? DEFAULT_KEY : descriptorKey;
            Checks.nonEmpty(descriptorValue, "header_value_match.descriptor_value");
            headers = Checks.list(headers, "header_value_match.headers");
            Checks.check(!headers.isEmpty(), "header_value_match.headers", "[]",
                    "at least one header matcher, as Envoy requires");
        }
    }

    /**
     * {@code query_parameter_value_match}: entry {@code (descriptorKey, descriptorValue)} when the request's query
     * parameters, percent-decoded, satisfy all {@code queryParameters} as {@code expectMatch} says, else the
     * descriptor is dropped; {@code query_match} the default key.
     */
    public record QueryParameterValueMatch(String descriptorKey, String descriptorValue, boolean expectMatch,
                                           List<QueryParameterMatcher> queryParameters) implements Action {
        /** Envoy's key when {@code descriptor_key} is empty. */
        public static final String DEFAULT_KEY = "query_match";

        public QueryParameterValueMatch {
            descriptorKey = descriptorKey == null || descriptorKey.isEmpty() ? DEFAULT_KEY : descriptorKey;
            Checks.nonEmpty(descriptorValue, "query_parameter_value_match.descriptor_value");
            queryParameters = Checks.list(queryParameters, "query_parameter_value_match.query_parameters");
            Checks.check(!queryParameters.isEmpty(), "query_parameter_value_match.query_parameters", "[]",
                    "at least one query parameter matcher, as Envoy requires");
        }
    }
}

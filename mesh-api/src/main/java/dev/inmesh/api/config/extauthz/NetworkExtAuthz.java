package dev.inmesh.api.config.extauthz;

import dev.inmesh.api.config.Checks;
import dev.inmesh.api.config.core.MetadataMatcher;

/**
 * The config of one external authorization network filter ({@code extensions.filters.network.ext_authz.v3.ExtAuthz}),
 * which istiod puts on the TCP chains of {@code virtualInbound} for a CUSTOM AuthorizationPolicy of a gRPC provider:
 * before a connection is relayed, the gRPC authorizer is asked about it once (its addresses and peer); a denied
 * connection, or one the authorizer could not decide without {@code failureModeAllow}, is closed.
 *
 * @param after how many of the chain's RBAC network filters come before it (the filters run in chain order)
 * @param statPrefix the prefix of its statistics
 * @param service the gRPC authorizer
 * @param failureModeAllow whether a connection goes on when the authorizer could not answer
 * @param filterEnabledMetadata the dynamic metadata a connection must have for the filter to check it (Istio's shadow
 *     RBAC network filter's {@code istio_ext_authz_shadow_effective_policy_id}); null: every connection is checked
 */
public record NetworkExtAuthz(int after, String statPrefix, ExtAuthz.GrpcService service, boolean failureModeAllow,
                              MetadataMatcher filterEnabledMetadata) {
    public NetworkExtAuthz {
        Checks.check(after >= 0, "filters", after, ">= 0");
        statPrefix = statPrefix == null ? "" : statPrefix;
        Checks.nonNull(service, "grpc_service");
    }

    /** The same check as an HTTP filter's config: the authorizer, the failure mode and the enabling metadata. */
    public ExtAuthz asFilter() {
        return new ExtAuthz(service, java.util.List.of(), failureModeAllow, ExtAuthz.DEFAULT_STATUS_ON_ERROR,
                filterEnabledMetadata, false);
    }
}

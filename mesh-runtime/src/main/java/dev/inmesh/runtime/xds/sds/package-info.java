/**
 * Envoy's secret discovery service as a client: {@link dev.inmesh.runtime.xds.sds.SdsSecretManager} fetches the
 * secrets TLS contexts name with a gRPC {@code sds_config} (Istio's {@code default} and {@code ROOTCA} from its agent's
 * {@code sds-grpc} Unix socket, a gateway's {@code kubernetes://NAME}) over {@code SecretDiscoveryService}, one
 * state-of-the-world stream per secret as Envoy's {@code SdsApi} subscribes to its one name, and keeps each one's PEMs
 * in memory only, as Envoy does, where the TLS contexts look for rotations as they look at Istio's file names.
 * A secret whose {@code sds_config} is {@code ads: {}} comes on the ADS client's stream instead, which subscribes to it
 * and hands it to the manager, which holds it in memory the same way. A secret no listener or cluster names any more
 * is let go of, as Envoy's {@code SdsApi} goes with its last holder: its stream ended, or, on the ADS stream,
 * unsubscribed from ({@link dev.inmesh.runtime.xds.sds.SdsSecretManager#retain}).
 *
 * <p>Public: {@link dev.inmesh.runtime.xds.sds.SdsSecretManager} and
 * {@link dev.inmesh.runtime.xds.sds.SdsSecret}. The rest is package-private.
 */
package dev.inmesh.runtime.xds.sds;

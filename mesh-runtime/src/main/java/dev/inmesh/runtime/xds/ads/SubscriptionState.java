package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Message;
import dev.inmesh.runtime.xds.DynamicState;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceType;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * One resource type's subscription on the ADS stream: what is asked for, what is held (the last good version of each
 * resource), and the ACK and NACK bookkeeping. The SDS secrets asked for on the stream (TLS contexts whose
 * {@code sds_config} is {@code ads: {}}) have one too ({@link #secrets}), as Envoy's mux keeps one subscription of the
 * {@code Secret} type for its secret providers: answered as the other types, the secrets themselves held by the
 * {@link dev.inmesh.runtime.xds.sds.SdsSecretManager}. Touched only on the client's context.
 */
final class SubscriptionState {

    /** A resource held: its parsed record, the message it came from (null for a timed-out empty one), its version. */
    record Entry(Object resource, Message message, ResourceBundle.Version version) {}

    /**
     * An ACK ({@code error} null) or a NACK of a response, or (no nonce) a new stream's first request; {@code delayed}:
     * a repeated NACK waiting for its delay.
     */
    record Answer(String version, String nonce, String error, boolean delayed) {}

    /**
     * What the taking of a response may change of a type before it is answered, as it was before: the resources held,
     * the names asked for and those awaited ({@link #pending}, {@link #removedByServer}, {@link #fetchTimers}), their
     * last rejected updates, and whether a change of names waits; put back when the taking fails in the client itself.
     */
    record Held(Map<String, Entry> resources, Set<String> names, Set<String> pending, Set<String> removedByServer,
                Map<String, Object> fetchTimers, Map<String, DynamicState.Failure> failures, boolean namesChanged) {}

    /** The type; null for the SDS secrets ({@link #secrets}). */
    final ResourceType type;
    /** The type's kind as Envoy names it ({@code Cluster}, ..., {@code Secret}) and its type URL. */
    final String kind;
    final String typeUrl;
    /** LDS and CDS: everything the server has; RDS and EDS: {@link #names}. */
    final boolean wildcard;
    /** The names subscribed to, for RDS and EDS. */
    Set<String> names = new TreeSet<>();
    /** Over delta xDS: the names subscribed to on the current stream, as the server was last told them. */
    Set<String> namesSent = new TreeSet<>();
    /**
     * Over delta xDS, RDS and EDS: names subscribed to that the server named in removed_resources since they last
     * arrived. What is held of them keeps serving, but, as Envoy, no version of them is claimed on a new stream
     * (initial_resource_versions), so that a server that has them again sends them.
     */
    final Set<String> removedByServer = new HashSet<>();
    /** Names subscribed to that have neither arrived nor timed out. */
    final Set<String> pending = new HashSet<>();
    /** The subscription each initial fetch timer runs for, by name, while it runs. */
    final Map<String, Object> fetchTimers = new HashMap<>();
    /** The last good version of each resource, by name. */
    Map<String, Entry> resources = new LinkedHashMap<>();
    /** For a wildcard type: whether a response arrived (or the initial fetch timed out). */
    boolean received;
    /** Whether a request of this type went out on the current stream. */
    boolean sentOnStream;
    boolean fetchTimerStarted;

    String ackedVersion = "";
    /**
     * The version_info of the last response that added, changed or deleted a resource held (Envoy's LDS and CDS
     * {@code version_info} in its config dump); null until one did.
     */
    String changedVersion;
    String nonce = "";
    Instant lastUpdated;
    String lastNackVersion = "";
    String lastNackError = "";
    Instant lastNackAt;
    /** How many times in a row the same version was NACKed with the same error (the server resending it). */
    int repeatedNacks;
    /**
     * Whether a response of this type is being processed (or, for RDS and EDS, one of LDS or CDS, which change the
     * names they ask for): as Envoy's mux pauses the type then, its requests wait, and one goes at the end
     * ({@link #answer}, with the names asked for then).
     */
    boolean paused;
    /** Whether the names asked for changed while {@link #paused}. */
    boolean namesChanged;
    /**
     * The ACK or NACK of the latest response not sent yet (while {@link #paused}, while a repeated NACK waits for
     * its delay, or for CDS while a cluster warms after the start, as is a new stream's first CDS request then); null
     * when none.
     */
    Answer answer;
    /**
     * The latest response, when it was rejected by name while the client reads Istio's secrets from a workload
     * identity (it is decoded again when the identity's files change), and the stream it came on; else null.
     */
    AdsClient.Update rejected;
    long rejectedOnStream;
    /** When {@link #rejected} arrived: decoded again and still rejected, it keeps that time. */
    Instant rejectedAt;
    /**
     * The latest response, when its decoding asked for SDS secrets of the ADS stream not arrived yet (it is decoded
     * again, neither ACKed nor NACKed before, once they are in or their initial fetch timeout is over), and the
     * stream it came on; else null.
     */
    AdsClient.Update parked;
    long parkedOnStream;
    /**
     * The listeners or clusters of {@link #parked} that differ from those serving when it was held, by name: warming
     * in the config dump while it is held (empty for none, and for the other types).
     */
    Map<String, DynamicState.Held> parkedWarming = Map.of();

    /** Holds {@code u}, which came on stream {@code stream}, for its secrets, {@code warming} its warming resources. */
    void park(AdsClient.Update u, long stream, Map<String, DynamicState.Held> warming) {
        parked = u;
        parkedOnStream = stream;
        parkedWarming = warming;
    }

    /** No response is held for its secrets any more ({@link #parked}). */
    void dropParked() {
        parked = null;
        parkedWarming = Map.of();
    }
    /** The last rejected update of each resource, by name, until an update of it is accepted or it goes. */
    final Map<String, DynamicState.Failure> failures = new LinkedHashMap<>();

    SubscriptionState(ResourceType type) {
        this(type, type.kind(), type.typeUrl());
    }

    private SubscriptionState(ResourceType type, String kind, String typeUrl) {
        this.type = type;
        this.kind = kind;
        this.typeUrl = typeUrl;
        this.wildcard = type == ResourceType.LISTENER || type == ResourceType.CLUSTER;
    }

    /** The subscription of the SDS secrets asked for on the ADS stream, by name. */
    static SubscriptionState secrets() {
        return new SubscriptionState(null, "Secret", dev.inmesh.runtime.xds.sds.SdsSecretManager.SECRET_TYPE_URL);
    }

    /** Whether what this type was asked for has arrived or timed out. */
    boolean complete() {
        return wildcard ? received : pending.isEmpty();
    }

    /** Whether this type has anything to ask for on a new stream. */
    boolean wanted() {
        return wildcard || !names.isEmpty();
    }

    /**
     * What the taking of a response may change of this type, as it is now ({@link #restore}): of the type of the
     * response, and of the type whose names it asks for (RDS for LDS, EDS for CDS), whose resources no longer asked
     * for are let go of in place.
     */
    Held held() {
        return new Held(new LinkedHashMap<>(resources), names, Set.copyOf(pending), Set.copyOf(removedByServer),
                new HashMap<>(fetchTimers), new LinkedHashMap<>(failures), namesChanged);
    }

    /** Puts back what a taking that failed changed of this type. */
    void restore(Held held) {
        resources = held.resources();
        names = held.names();
        pending.clear();
        pending.addAll(held.pending());
        removedByServer.clear();
        removedByServer.addAll(held.removedByServer());
        fetchTimers.clear();
        fetchTimers.putAll(held.fetchTimers());
        failures.clear();
        failures.putAll(held.failures());
        namesChanged = held.namesChanged();
    }

    void nacked(String version, String error, Instant at) {
        boolean same = version.equals(lastNackVersion) && error.equals(lastNackError);
        repeatedNacks = same ? repeatedNacks + 1 : 0;
        lastNackVersion = version;
        lastNackError = error;
        lastNackAt = at;
    }

    /** Whether the type has been asked for or heard from: from then on {@code /debug/xds_status} lists secrets. */
    boolean shown() {
        return !names.isEmpty() || sentOnStream || lastUpdated != null;
    }

    XdsStatus.TypeStatus status() {
        return status(resources.size());
    }

    /** The type's entry of {@code /debug/xds_status}, {@code held} of its resources held. */
    XdsStatus.TypeStatus status(int held) {
        return new XdsStatus.TypeStatus(kind, typeUrl, ackedVersion, nonce, lastUpdated, lastNackVersion,
                lastNackError, lastNackAt, held, wildcard, new ArrayList<>(names));
    }
}

package dev.inmesh.runtime.xds.ads;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.inmesh.runtime.xds.FieldError;
import dev.inmesh.runtime.xds.InvalidResourceException;
import dev.inmesh.runtime.xds.Parsers;
import dev.inmesh.runtime.xds.ProtoConstraintCheck;
import dev.inmesh.runtime.xds.ResourceBundle;
import dev.inmesh.runtime.xds.ResourceParser;
import dev.inmesh.runtime.xds.ResourceType;
import io.envoyproxy.envoy.service.discovery.v3.DiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * Decodes and parses the resources of one DiscoveryResponse, each on its own: the valid ones by name, and an error
 * for each invalid one that names it and its field (gRFC A46). As Envoy, a resource that cannot be decoded, or that
 * fails the proto constraints of Envoy's API ({@link ProtoConstraintCheck}), rejects the whole response instead,
 * the latter before any resource is parsed. Pure.
 */
final class ResponseDecoder {
    /** The wrapper a server may put each resource of a response in ({@link #refusedWrapperField}). */
    static final String WRAPPER_TYPE_URL = "type.googleapis.com/envoy.service.discovery.v3.Resource";

    private ResponseDecoder() {}

    /**
     * @param valid the parsed resources by name
     * @param errors an error per invalid resource, by name ({@code resources[i]} when it has none)
     * @param undecodable whether a resource could not be decoded as Envoy decodes it (its bytes, its type_url, or
     *                    the proto constraints of Envoy's API): the whole response is rejected
     * @param rejected the message of each invalid resource that has a name, by name
     */
    record Decoded(Map<String, SubscriptionState.Entry> valid, Map<String, String> errors, boolean undecodable,
                   Map<String, Message> rejected) {}

    /**
     * @param held the resources held now: one whose message (and, with {@code delta}, version) is unchanged is reused
     *             as it is, not parsed again
     * @param delta whether {@code r} is a delta response in state of the world form ({@link AdsClient.Update}): each
     *              resource takes the version of its wrapper, as Envoy keeps each resource's own version in delta
     * @param asked whether a name is asked for: a resource (or wrapper) whose name is not is decoded only as far as
     *              its name and then left out, neither parsed nor named in an error, as Envoy's mux hands each
     *              watch only the names it asked for; a resource that cannot be decoded still rejects the response.
     *              The proto constraints of Envoy's API are checked of every resource of a state of the world response,
     *              as Envoy decodes them all, and of a delta one only of those asked for, as Envoy's delta watch map
     *              hands on, so decodes, nothing else
     */
    static Decoded decode(ResourceType type, DiscoveryResponse r, ResourceBundle.Version version,
                          Map<String, SubscriptionState.Entry> held, boolean delta,
                          Predicate<String> asked) {
        Map<String, SubscriptionState.Entry> valid = new LinkedHashMap<>();
        Map<String, String> errors = new LinkedHashMap<>();
        Map<String, Message> rejected = new LinkedHashMap<>();
        boolean undecodable = false;
        ResourceParser<Message, ?> parser;
        try {
            parser = Parsers.forType(type);
        } catch (IllegalStateException e) {
            for (int i = 0; i < r.getResourcesCount(); i++) {
                errors.put("resources[" + i + "]", type.kind() + " resources[" + i + "]: Inmesh has no parser for "
                        + type.kind() + " yet");
            }
            return new Decoded(valid, errors, r.getResourcesCount() > 0, rejected);
        }
        List<Unpacked> unpacked = new ArrayList<>();
        for (int i = 0; i < r.getResourcesCount(); i++) {
            Any any = r.getResources(i);
            String at = "resources[" + i + "]";
            Resource wrapper = null;
            ResourceBundle.Version v = version;
            if (any.getTypeUrl().equals(WRAPPER_TYPE_URL)) {
                try {
                    wrapper = any.unpack(Resource.class);
                } catch (InvalidProtocolBufferException e) {
                    errors.put(at, type.kind() + " " + at + ": cannot decode: " + e.getMessage());
                    undecodable = true;
                    continue;
                }
                boolean unasked = !wrapper.getName().isEmpty() && !asked.test(wrapper.getName());
                if (unasked && delta) {
                    continue; // not decoded at all, as Envoy's delta watch map
                }
                // not asked for over state of the world: still decoded and checked (below), its wrapper's fields not
                String refused = unasked ? null : refusedWrapperField(wrapper);
                if (refused != null && !wrapper.getName().isEmpty()) {
                    errors.put(wrapper.getName(), type.about(wrapper.getName()) + at + "." + refused);
                    continue;
                }
                if (refused != null) {
                    errors.put(at, type.kind() + " " + at + "." + refused);
                    undecodable = true;
                    continue;
                }
                any = wrapper.getResource();
                at += ".resource";
                if (delta) {
                    v = new ResourceBundle.Version(wrapper.getVersion(), version.lastUpdated());
                }
            }
            if (!any.getTypeUrl().equals(type.typeUrl())) {
                errors.put(at, type.kind() + " " + at + ": type_url \"" + any.getTypeUrl() + "\" (expected: "
                        + type.typeUrl() + ")");
                undecodable = true;
                continue;
            }
            Message m;
            try {
                m = any.unpack(parser.messageClass());
            } catch (InvalidProtocolBufferException e) {
                errors.put(at, type.kind() + " " + at + ": cannot decode: " + e.getMessage());
                undecodable = true;
                continue;
            }
            String name = parser.name(m);
            SubscriptionState.Entry same = held.get(name);
            if (same != null && !(m.equals(same.message())
                    && (!delta || same.version().versionInfo().equals(v.versionInfo())))) {
                same = null;
            }
            unpacked.add(new Unpacked(i, wrapper, v, m, name, same));
        }
        // As Envoy decodes a response: every resource is checked against the proto constraints of Envoy's API before
        // any of them is used, and one that fails them rejects the whole response (OpaqueResourceDecoderImpl). One
        // the same as the message held under its name passed them when it was taken: it is not checked again.
        boolean violated = false;
        for (Unpacked u : unpacked) {
            String name = u.wrapper != null && !u.wrapper.getName().isEmpty() ? u.wrapper.getName() : u.name;
            FieldError e = u.same == null && (!delta || asked.test(name)) ? ProtoConstraintCheck.find(u.message)
                    : null;
            if (e != null) {
                errors.putIfAbsent(name.isEmpty() ? "resources[" + u.index + "]" : name, type.about(name)
                        + e.getMessage());
                violated = true;
            }
        }
        if (violated) {
            return new Decoded(Map.of(), errors, true, Map.of());
        }
        for (Unpacked u : unpacked) {
            Message m = u.message;
            Resource wrapper = u.wrapper;
            ResourceBundle.Version v = u.version;
            String name = u.name;
            if (!asked.test(wrapper == null || wrapper.getName().isEmpty() ? name : wrapper.getName())) {
                continue;
            }
            if (wrapper != null && !wrapper.getName().isEmpty() && !wrapper.getName().equals(name)) {
                errors.put(wrapper.getName(), type.about(wrapper.getName()) + "resources[" + u.index
                        + "].name: \"" + wrapper.getName() + "\" (expected: the name of the resource it wraps, \""
                        + name + "\")");
                rejected.put(wrapper.getName(), m);
                continue;
            }
            if (valid.containsKey(name) || errors.containsKey(name)) {
                valid.remove(name);
                // Envoy's words for a listener or a cluster sent twice
                errors.put(name, type.about(name) + (type == ResourceType.LISTENER || type == ResourceType.CLUSTER
                        ? "duplicate " + type.kind().toLowerCase(java.util.Locale.ROOT) + " " + name + " found"
                        : "sent twice in one response"));
                rejected.put(name, m);
                continue;
            }
            if (u.same != null) {
                valid.put(name, u.same);
                continue;
            }
            try {
                valid.put(name, new SubscriptionState.Entry(parser.parse(m), m, v));
            } catch (InvalidResourceException e) {
                errors.put(name, e.getMessage());
                rejected.put(name, m);
            } catch (RuntimeException e) {
                errors.put(name, type.about(name) + e);
                rejected.put(name, m);
            }
        }
        return new Decoded(valid, errors, undecodable, rejected);
    }

    /**
     * A resource of the response, unwrapped and decoded: its index, its wrapper (or null), version and message, the
     * name the message gives, and the resource held under that name when its message (and, over delta, its version)
     * is the same (else null), which is reused as it is.
     */
    private record Unpacked(int index, Resource wrapper, ResourceBundle.Version version, Message message, String name,
                            SubscriptionState.Entry same) {}

    /**
     * The field of a {@code Resource} wrapper that Inmesh refuses, with why, or null. As Envoy, a state of the world
     * response may wrap each resource in {@code envoy.service.discovery.v3.Resource} (a delta response always does):
     * the resource it wraps is decoded as if sent bare, under the wrapper's name. Its {@code version} is the
     * resource's in a delta response and changes nothing in a state of the world one (Envoy takes the response's),
     * nor do {@code aliases} (VHDS only), {@code metadata} (Envoy hands it to a config tracker
     * extension only) or {@code cache_control} (Inmesh keeps no xDS cache across restarts). A {@code ttl}, after
     * which Envoy drops the resource unless the server refreshes it, is not implemented, and a wrapper with no
     * resource is such a refresh (a heartbeat): both are refused.
     */
    static String refusedWrapperField(Resource w) {
        if (w.hasTtl()) {
            return "ttl: not supported by Inmesh (a resource's time to live is not implemented)";
        }
        if (!w.hasResource()) {
            return "resource: missing (a heartbeat of a resource with a ttl, which Inmesh does not support)";
        }
        return null;
    }
}
